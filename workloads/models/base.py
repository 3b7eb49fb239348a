"""What a builder receives (``InputSpec``) and what a model is (``Model``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

APIS = ("keras", "torch", "gluon")
INPUT_KINDS = ("image", "sequence")
Builder = Callable[[Any, "InputSpec"], Any]  # typing.Callable: a runtime alias that Python 3.8 can subscript


@dataclass(frozen=True)
class InputSpec:
    """What one sample looks like to the network, in the layout it is fed.

    ``shape`` is ``(H, W, C)`` or ``(C, H, W)`` for images (``channels_first`` says which)
    and ``(T, F)`` for sequences. PyTorch always gets ``(C, H, W)``: channels_last is a
    memory format there, not a shape.
    """

    shape: tuple[int, ...]
    num_classes: int
    channels_first: bool = False

    @property
    def channels(self) -> int:
        return self.shape[0] if self.channels_first else self.shape[-1]

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[1:] if self.channels_first else self.shape[:-1]

    @property
    def channel_axis(self) -> int:
        """Axis of the channels in a batch, for BatchNorm."""
        return 1 if self.channels_first else -1

    @property
    def gluon_layout(self) -> str:
        return "NCHW" if self.channels_first else "NHWC"


@dataclass(frozen=True)
class Model:
    """A named model and its builders; a missing builder means "not available in that API"."""

    name: str
    input_kind: str
    description: str
    keras: Optional[Builder] = None
    torch: Optional[Builder] = None
    gluon: Optional[Builder] = None

    def builder(self, api: str) -> Optional[Builder]:
        return getattr(self, api)

    def apis(self) -> tuple[str, ...]:
        return tuple(api for api in APIS if self.builder(api) is not None)

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.input_kind, self.description, self.apis())


@dataclass(frozen=True)
class ModelInfo:
    """What a model is without its builders: what the host learns of a plugin's model (see ``workloads.discover``)."""

    name: str
    input_kind: str
    description: str
    apis: tuple[str, ...]
