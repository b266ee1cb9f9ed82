"""The built-in methods. Each module registers its recipe (painterly.recipe.register) on import."""

from . import gatys, strotss  # noqa: F401  (registration)
