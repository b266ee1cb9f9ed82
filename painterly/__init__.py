"""painterly: neural style transfer that is fast on a CPU.

    import painterly
    image = painterly.stylize("photo.jpg", ["starry_night.jpg"], size=512, iterations=200)
    image.save("out.png")
"""

from .api import largest_size, make_config, plan, stylize
from .errors import PainterlyError
from .methods.gatys import GatysConfig
from .methods.strotss import StrotssConfig
from .progress import StepInfo

__all__ = ["stylize", "plan", "largest_size", "make_config", "GatysConfig", "StrotssConfig", "PainterlyError", "StepInfo"]
__version__ = "0.1.0"
