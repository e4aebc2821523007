"""IR construction, validation messages, JSON round-trip and QASM export."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qrnn.errors import IRError
from qrnn.ir import GATE_SPECS, Cell, Circuit, Gate, PauliTerm, Readouts, to_qasm3


def test_hardware_efficient_counts_and_order():
    circuit = Circuit.hardware_efficient(4, n_layers=2)
    assert circuit.n_params == 2 * 4 * 2  # P = len(rotations) * n * L
    names = [g.name for g in circuit.gates]
    assert names[:8] == ["ry"] * 4 + ["rz"] * 4
    assert [g.wires for g in circuit.gates[8:12]] == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert [g.slot for g in circuit.gates if g.slot is not None] == list(range(16))


def test_ladder_and_custom_rotations():
    circuit = Circuit.hardware_efficient(
        3, 1, rotations=("rx",), entangler="ladder", entangling_gate="cz"
    )
    assert [(g.name, g.wires) for g in circuit.gates] == [
        ("rx", (0,)),
        ("rx", (1,)),
        ("rx", (2,)),
        ("cz", (0, 1)),
        ("cz", (1, 2)),
    ]
    assert circuit.n_params == 3


def test_readout_sets():
    assert len(Readouts.z(5)) == 5
    assert len(Readouts.xyz(8)) == 24  # the paper's 24 measurements for 8 qubits
    assert Readouts.zz(3).labels() == ["Z0Z1", "Z1Z2"]
    assert len(Readouts.named("xyz+zz", 4)) == 12 + 3
    assert Readouts.named("z+xyz", 2).labels() == ["Z0", "Z1", "X0", "Y0", "X1", "Y1"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Gate("cx", (1, 1)), r"distinct wires, got wires=\(1, 1\)"),
        (lambda: Gate("ry", (0, 1), slot=0), r"acts on 1 wire\(s\), got wires=\(0, 1\)"),
        (lambda: Gate("crx", (0, 1), slot=0), r"'name' must be one of .* \(got 'crx'\)"),
        (lambda: Gate("ry", (0,)), "exactly one of 'slot' or 'angle'"),
        (lambda: Gate("ry", (0,), slot=1, angle=0.2), "exactly one of 'slot' or 'angle'"),
        (lambda: Gate("h", (0,), slot=0), "takes no angle"),
        (lambda: Gate("ry", (-1,), slot=0), "non-negative ints"),
        (lambda: Gate("ry", (0,), slot=-2), r"'slot' must be a non-negative int .*\(got -2\)"),
        (lambda: Gate("rz", (0,), angle=float("nan")), "must be finite"),
        (lambda: Circuit(2, [Gate("ry", (2,), slot=0)]), r"wire out of range.*0\.\.1"),
        (lambda: Circuit(2, [Gate("ry", (0,), slot=3)], n_params=2), "slot 3, out of range"),
        (lambda: Circuit(0, []), r"'n_qubits' must be a positive int \(got 0\)"),
        (lambda: Readouts([]), "empty readout"),
        (lambda: PauliTerm("ZQ", (0, 1)), "only X, Y, Z"),
        (lambda: PauliTerm("ZZ", (0,)), r"needs 2 wire\(s\)"),
        (lambda: PauliTerm("", ()), "non-empty string"),
        (lambda: Cell(Circuit(2, []), Readouts.z(3)), "wire 2, out of range for n_qubits=2"),
        (lambda: Circuit.hardware_efficient(3, entangler="star"), "'entangler' must be one of"),
        (lambda: Readouts.named("xy", 2), "unknown readout set 'xy'"),
    ],
)
def test_validation_messages(make, message):
    with pytest.raises(IRError, match=message):
        make()


def test_frozen_and_hashable():
    cell = Cell.default(3)
    with pytest.raises(AttributeError):
        cell.circuit = None
    assert hash(cell) == hash(Cell.default(3))


# -- JSON round-trip --------------------------------------------------------------------------


@st.composite
def cells(draw):
    n = draw(st.integers(1, 6))
    gates = []
    n_slots = 0
    for _ in range(draw(st.integers(0, 12))):
        name = draw(
            st.sampled_from(sorted(g for g, spec in GATE_SPECS.items() if spec.n_wires <= n))
        )
        spec = GATE_SPECS[name]
        wires = tuple(draw(st.permutations(range(n)))[: spec.n_wires])
        if not spec.parametrized:
            gates.append(Gate(name, wires))
        elif draw(st.booleans()):
            gates.append(Gate(name, wires, slot=n_slots))
            n_slots += 1
        else:
            angle = draw(st.floats(-10, 10, allow_nan=False))
            gates.append(Gate(name, wires, angle=angle))
    extra = draw(st.integers(0, 3))
    terms = []
    for _ in range(draw(st.integers(1, 5))):
        size = draw(st.integers(1, n))
        wires = tuple(draw(st.permutations(range(n)))[:size])
        paulis = "".join(draw(st.sampled_from("XYZ")) for _ in range(size))
        terms.append(PauliTerm(paulis, wires))
    return Cell(Circuit(n, gates, n_params=n_slots + extra), Readouts(terms))


@given(cells())
def test_json_round_trip(cell):
    assert Cell.from_json(cell.to_json()) == cell
    assert Cell.from_dict(json.loads(json.dumps(cell.to_dict()))) == cell


def _valid_dict():
    return Cell.default(2, n_layers=1).to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("readouts"), r"cell is missing key\(s\) \['readouts'\]"),
        (lambda d: d.update(extra=1), r"cell has unknown key\(s\) \['extra'\]"),
        (lambda d: d.update(format_version=9), "format_version must be 1"),
        (lambda d: d["circuit"].update(gates="ry"), "cell.circuit.gates must be a list"),
        (lambda d: d["circuit"]["gates"][0].update(name="foo"), r"cell.circuit.gates\[0\]: 'name'"),
        (lambda d: d["circuit"]["gates"][0].update(wire=0), r"gates\[0\] has unknown key"),
        (lambda d: d["circuit"]["gates"][0].update(slot=99), "slot 99, out of range"),
        (lambda d: d["circuit"].update(n_qubits="2"), "'n_qubits' must be a positive int"),
        (lambda d: d["readouts"][0].update(wires=[5]), "wire 5, out of range"),
        (lambda d: d.update(readouts=[]), "empty readout"),
        (lambda d: d["readouts"].__setitem__(0, "Z0"), r"cell.readouts\[0\] must be an object"),
    ],
)
def test_from_dict_rejects_malformed(mutate, message):
    data = _valid_dict()
    mutate(data)
    with pytest.raises(IRError, match=message):
        Cell.from_dict(data)


def test_from_json_rejects_bad_json():
    with pytest.raises(IRError, match="not valid JSON"):
        Cell.from_json("{circuit")
    with pytest.raises(IRError, match="cell must be an object"):
        Cell.from_json("[1, 2]")


# -- OpenQASM 3 -------------------------------------------------------------------------------


def test_qasm3_export_binds_angles():
    circuit = Circuit(
        2,
        [
            Gate("ry", (0,), slot=1),
            Gate("rzz", (0, 1), slot=0),
            Gate("rz", (1,), angle=0.25),
            Gate("cx", (1, 0)),
        ],
    )
    text = to_qasm3(circuit, [0.5, -1.5])
    lines = text.strip().splitlines()
    assert lines[:2] == ["OPENQASM 3.0;", 'include "stdgates.inc";']
    assert lines[2].startswith("gate rzz(theta) a, b")
    assert lines[3:] == [
        "qubit[2] q;",
        "ry(-1.5) q[0];",
        "rzz(0.5) q[0], q[1];",
        "rz(0.25) q[1];",
        "cx q[1], q[0];",
    ]


def test_qasm3_rejects_wrong_thetas():
    circuit = Circuit.hardware_efficient(2, 1)
    with pytest.raises(IRError, match="4 entries"):
        to_qasm3(circuit, [0.1])
    with pytest.raises(IRError, match="finite"):
        to_qasm3(circuit, [0.1, 0.2, float("inf"), 0.0])
