"""makemore: character-level language models that make more of what you give them."""

__version__ = "0.2.0"
