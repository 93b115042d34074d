"""``python -m llmx``: the same as the ``llmx`` command."""

from llmx._cli import main

if __name__ == "__main__":
    main()
