"""What every method's frozen config shares: JSON round-trip and the checks of common fields."""

from __future__ import annotations

import dataclasses
import json
from typing import Optional, TypeVar

from .errors import PainterlyError

T = TypeVar("T", bound="MethodConfig")


class MethodConfig:
    """Mixin for frozen dataclass configs: to_json/from_json, and validation of shared fields."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        data = json.loads(text)
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = tuple(value)
        return cls(**data)

    def check_common(self, pooling: str, precision: str, max_time: Optional[float]) -> None:
        if pooling not in ("avg", "max"):
            raise PainterlyError(f"pooling must be avg or max, got '{pooling}'")
        if precision not in ("auto", "fp32", "bf16"):
            raise PainterlyError(f"precision must be auto, fp32 or bf16, got '{precision}'")
        if max_time is not None and max_time <= 0:
            raise PainterlyError("max-time must be positive")

    def check_tiling(self, tile_size: Optional[int], tile_rounds: int, max_memory: Optional[float]) -> None:
        """The tiling fields both methods share (painterly.tiling)."""
        if tile_size is not None and tile_size < 0:
            raise PainterlyError(f"tile-size must not be negative, got {tile_size}")
        if tile_rounds < 1:
            raise PainterlyError(f"tile-rounds must be at least 1, got {tile_rounds}")
        if max_memory is not None and max_memory <= 0:
            raise PainterlyError(f"max-memory must be positive (GiB), got {max_memory:g}")
