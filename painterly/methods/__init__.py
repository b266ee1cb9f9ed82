"""The built-in methods. Each module registers its recipe (painterly.recipe.register) on import."""

from . import feedforward, gatys, strotss  # noqa: F401  (registration)
