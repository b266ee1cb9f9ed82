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
