"""The request engine: the path one request takes, in the order it runs.

- :mod:`.pipeline` — ``Pipeline.complete`` / ``Pipeline.stream``: composition only;
- :mod:`.run` — one request's scope (id, events, deadline, attempt records);
- :mod:`.resolve` — model reference or alias -> ``Route`` (candidates, strategy, hedging);
- :mod:`.fallback` — plan, fallback loop, retries, hedging, the request's one error;
- :mod:`.call` — ``Call``: one attempt, admitted, then succeeded / failed / abandoned;
- :mod:`.stream` — a streamed attempt: opened to its first chunk, then delivered;
- :mod:`.view` — ``LiveView``: the live state routing strategies read, and the stats.
"""
