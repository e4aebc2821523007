"""Gates of the circuit IR: a closed set of named gates, each a frozen attrs node.

A gate's angle is either a constant (``angle``) or a *slot* (``slot``), an index into the
per-step angle vector θ_t that the classical controller emits. Gate names are lowercase strings;
the same strings key :data:`GATE_SPECS` and :attr:`Capabilities.gates`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import attrs

from qrnn.errors import IRError


class GateSpec(NamedTuple):
    """What the IR knows of a gate name: how many wires it acts on and whether it takes an angle."""

    n_wires: int
    parametrized: bool


#: Every gate the IR can express. Rotations are exp(-iθG/2) for the Pauli string G
#: (rx: X, rzz: Z⊗Z, ...); fixed gates are the usual textbook matrices.
GATE_SPECS: dict[str, GateSpec] = {
    "rx": GateSpec(1, True),
    "ry": GateSpec(1, True),
    "rz": GateSpec(1, True),
    "rxx": GateSpec(2, True),
    "ryy": GateSpec(2, True),
    "rzz": GateSpec(2, True),
    "h": GateSpec(1, False),
    "x": GateSpec(1, False),
    "y": GateSpec(1, False),
    "z": GateSpec(1, False),
    "s": GateSpec(1, False),
    "sdg": GateSpec(1, False),
    "t": GateSpec(1, False),
    "cx": GateSpec(2, False),
    "cz": GateSpec(2, False),
    "swap": GateSpec(2, False),
}


def _check_name(_instance, _attribute, name) -> None:
    if name not in GATE_SPECS:
        raise IRError(f"'name' must be one of {sorted(GATE_SPECS)} (got {name!r})")


def _wires_converter(wires) -> tuple[int, ...]:
    if isinstance(wires, int):
        return (wires,)
    try:
        return tuple(wires)
    except TypeError:
        raise IRError(f"'wires' must be an int or a sequence of ints (got {wires!r})") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@attrs.frozen
class Gate:
    """One gate of a per-step circuit.

    Example:
        ``Gate("ry", (0,), slot=3)`` rotates wire 0 by θ_t[3];
        ``Gate("rz", (1,), angle=0.5)`` by the constant 0.5; ``Gate("cx", (0, 1))`` has no angle.
    """

    name: str = attrs.field(validator=_check_name)
    """Lowercase gate name, a key of :data:`GATE_SPECS`."""
    wires: tuple[int, ...] = attrs.field(converter=_wires_converter)
    """The wires the gate acts on; for controlled gates the control comes first."""
    slot: int | None = attrs.field(default=None)
    """Index into θ_t for a parametrized gate whose angle the controller sets."""
    angle: float | None = attrs.field(default=None)
    """Constant angle for a parametrized gate that no controller output drives."""

    @wires.validator
    def _check_wires(self, _attribute, wires) -> None:
        spec = GATE_SPECS[self.name]
        if len(wires) != spec.n_wires:
            raise IRError(f"gate {self.name!r} acts on {spec.n_wires} wire(s), got wires={wires!r}")
        for wire in wires:
            if not _is_int(wire) or wire < 0:
                raise IRError(f"'wires' must be non-negative ints (got {wires!r})")
        if len(set(wires)) != len(wires):
            raise IRError(f"gate {self.name!r} needs distinct wires, got wires={wires!r}")

    @slot.validator
    def _check_slot(self, _attribute, slot) -> None:
        if slot is not None and (not _is_int(slot) or slot < 0):
            raise IRError(f"'slot' must be a non-negative int or None (got {slot!r})")

    @angle.validator
    def _check_angle(self, _attribute, angle) -> None:
        spec = GATE_SPECS[self.name]
        if angle is not None:
            if isinstance(angle, bool) or not isinstance(angle, (int, float)):
                raise IRError(f"'angle' must be a float or None (got {angle!r})")
            if not math.isfinite(angle):
                raise IRError(f"'angle' must be finite (got {angle!r})")
        if spec.parametrized and (self.slot is None) == (angle is None):
            raise IRError(
                f"gate {self.name!r} takes exactly one of 'slot' or 'angle' "
                f"(got slot={self.slot!r}, angle={angle!r})"
            )
        if not spec.parametrized and (self.slot is not None or angle is not None):
            raise IRError(
                f"gate {self.name!r} takes no angle (got slot={self.slot!r}, angle={angle!r})"
            )

    @property
    def parametrized(self) -> bool:
        """True for rotation gates (whether their angle is a slot or a constant)."""
        return GATE_SPECS[self.name].parametrized

    def to_dict(self) -> dict:
        """Plain-JSON form; keys with no value are left out."""
        out: dict = {"name": self.name, "wires": list(self.wires)}
        if self.slot is not None:
            out["slot"] = self.slot
        if self.angle is not None:
            out["angle"] = float(self.angle)
        return out
