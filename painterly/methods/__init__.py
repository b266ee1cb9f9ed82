"""The built-in methods. Each module registers its recipe (painterly.recipe.register) on import."""

from . import adain, feedforward, gatys, strotss, wct  # noqa: F401  (registration)
