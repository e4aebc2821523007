"""Training-step time and peak memory of one QRNN cell on qrnn and its peers, in one run.

The cell: n qubits, L = 2 layers of (RY on every wire, RZ on every wire, CNOT ring), readouts
⟨X_i⟩, ⟨Y_i⟩, ⟨Z_i⟩ on every wire (K = 3n), batch B = 32, a GELU controller of width 64 that
reads the input and the previous readouts and emits the P = 4n angles, a linear head on the last
readouts and an MSE loss. A training step is the forward pass over T steps, the backward pass
and one Adam step. Implementations ("impls"):

    qrnn            torch.statevector, fused kernels, gradient="adjoint"
    qrnn-mmap       the same with glibc's MALLOC_MMAP_THRESHOLD_=262144, so that freed tensors
                    of 256 KiB or more go back to the system instead of staying in the heap
    qrnn-autograd   torch.statevector, fused kernels, gradient="autograd"
    qrnn-gates      torch.statevector, gate by gate (fused=False), gradient="autograd"
    pennylane       PennyLane default.qubit, torch backprop, parameter broadcasting
    lightning       PennyLane lightning.qubit, adjoint; one call per sample, and the state is
                    not differentiable there, so step t re-runs the prefix U(θ_t)…U(θ_1)
    aer             Qiskit Aer statevector, forward only (the step's forward pass is timed)
    torchquantum    TorchQuantum 0.1.8, run by --torchquantum-python (a separate environment)

Every measurement runs in a fresh subprocess with one thread, so peak RSS (getrusage) is the
configuration's own; the peak of the timed steps alone (VmHWM, reset after the warm-up step) is
recorded beside it. Times are the process's CPU time per training step (median), which on an
idle machine equals the wall time with one thread and on a shared one is not inflated by other
jobs; wall times are recorded beside them. Before an impl is timed at some n, its readouts
over a few steps of random angles must agree with qrnn's complex128 readouts to 1e-5. A second
section times one forward layer of the fused plan against the memory-bandwidth floor (bytes
moved ÷ measured copy bandwidth).

Usage:
    python benchmarks/bench_training.py --quick            # a few minutes: the docs table
    python benchmarks/bench_training.py                    # the full grid (hours)
    python benchmarks/bench_training.py --impls qrnn,pennylane --n 8 10 --T 32
    ... --torchquantum-python /tmp/tqvenv/bin/python --json results.json
"""

from __future__ import annotations

import argparse
import enum
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
THREADS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
BATCH, LAYERS, HIDDEN, INPUTS = 32, 2, 64, 4
CHECK_STEPS, CHECK_BATCH, AGREEMENT = 3, 4, 1e-5
IMPLS = ("qrnn", "qrnn-mmap", "qrnn-autograd", "qrnn-gates", "pennylane", "lightning", "aer",
         "torchquantum")
#: Extra environment of an impl's processes.
IMPL_ENV = {"qrnn-mmap": {"MALLOC_MMAP_THRESHOLD_": "262144"}}
FORWARD_ONLY = {"aer"}
QUADRATIC_IN_T = {"lightning"}  # prefix re-runs: a sequence of T steps costs O(T²)


# -- the simulators (imported inside the worker process only) -----------------------------------


def ring(n_qubits: int) -> list[tuple[int, int]]:
    """CNOT pairs of the ring, as Circuit.hardware_efficient builds them."""
    pairs = [(w, w + 1) for w in range(n_qubits - 1)]
    return pairs + [(n_qubits - 1, 0)] if n_qubits > 2 else pairs


class QrnnSimulator:
    """qrnn's torch.statevector with the given backend options."""

    def __init__(self, n_qubits: int, **options) -> None:
        import qrnn

        cell = qrnn.Cell.default(n_qubits, n_layers=LAYERS, readouts="xyz")
        self.program = qrnn.get_backend("torch.statevector", **options).prepare(cell)

    def init_state(self, batch: int):
        return self.program.init_state(batch)

    def step(self, state, thetas):
        return self.program.step(state, thetas)


class PennyLaneSimulator:
    """default.qubit, torch backprop; the state enters each step through a broadcast StatePrep."""

    def __init__(self, n_qubits: int) -> None:
        import pennylane as qml
        import torch

        self.n, self.torch = n_qubits, torch
        paulis = (qml.PauliX, qml.PauliY, qml.PauliZ)

        @qml.qnode(qml.device("default.qubit", wires=n_qubits), interface="torch",
                   diff_method="backprop")
        def circuit(state, thetas):  # (B, D) complex64, (B, P)
            qml.StatePrep(state, wires=range(n_qubits))
            _layers(qml, n_qubits, lambda k: thetas[:, k])
            return [qml.state()] + [qml.expval(p(w)) for w in range(n_qubits) for p in paulis]

        self.circuit = circuit

    def init_state(self, batch: int):
        state = self.torch.zeros(batch, 2**self.n, dtype=self.torch.complex64)
        state[:, 0] = 1
        return state

    def step(self, state, thetas):
        state, *readouts = self.circuit(state, thetas)
        return state, self.torch.stack(readouts, -1).float()


class LightningSimulator:
    """lightning.qubit with its adjoint method: one call per sample; the 'state' is the angle
    history, and step t runs the whole prefix U(θ_t)…U(θ_1)|0…0⟩."""

    def __init__(self, n_qubits: int) -> None:
        import pennylane as qml
        import torch

        self.torch = torch
        paulis = (qml.PauliX, qml.PauliY, qml.PauliZ)

        @qml.qnode(qml.device("lightning.qubit", wires=n_qubits), interface="torch",
                   diff_method="adjoint")
        def prefix(history):  # (t, P) float64 for one sample
            for thetas in history:
                _layers(qml, n_qubits, lambda k, thetas=thetas: thetas[k])
            return [qml.expval(p(w)) for w in range(n_qubits) for p in paulis]

        self.prefix = prefix

    def init_state(self, batch: int):
        return []

    def step(self, state, thetas):
        history = [*state, thetas.double()]
        stacked = self.torch.stack(history)  # (t, B, P)
        readouts = [self.torch.stack(self.prefix(stacked[:, b])) for b in range(thetas.shape[0])]
        return history, self.torch.stack(readouts).float()


class AerSimulator:
    """Qiskit Aer statevector, forward only: per step one run of B circuits that start with
    set_statevector and save the readouts and the state (amplitudes are little-endian there)."""

    def __init__(self, n_qubits: int) -> None:
        import qiskit_aer
        from qiskit import QuantumCircuit
        from qiskit.circuit import ParameterVector
        from qiskit.quantum_info import Pauli

        self.n, self.QuantumCircuit, self.Pauli = n_qubits, QuantumCircuit, Pauli
        self.simulator = qiskit_aer.AerSimulator(method="statevector", max_parallel_threads=1,
                                                 max_parallel_experiments=1)
        params = ParameterVector("theta", 2 * n_qubits * LAYERS)
        self.template = QuantumCircuit(n_qubits)
        for layer in range(LAYERS):
            base = 2 * n_qubits * layer
            for w in range(n_qubits):
                self.template.ry(params[base + w], w)
            for w in range(n_qubits):
                self.template.rz(params[base + n_qubits + w], w)
            for control, target in ring(n_qubits):
                self.template.cx(control, target)

    def _reverse(self, amplitudes: np.ndarray) -> np.ndarray:
        batch = amplitudes.shape[0]
        axes = [0, *range(self.n, 0, -1)]
        return amplitudes.reshape((batch,) + (2,) * self.n).transpose(axes).reshape(batch, -1)

    def init_state(self, batch: int):
        state = np.zeros((batch, 2**self.n), dtype=np.complex128)
        state[:, 0] = 1
        return state

    def step(self, state, thetas):
        import torch

        qiskit_order = self._reverse(state)
        circuits = []
        for b, angles in enumerate(thetas.double().numpy()):
            qc = self.QuantumCircuit(self.n)
            qc.set_statevector(qiskit_order[b])
            qc.compose(self.template.assign_parameters(angles), inplace=True)
            for w in range(self.n):
                for letter in "XYZ":
                    qc.save_expectation_value(self.Pauli(letter), [w], label=f"{letter}{w}")
            qc.save_statevector(label="state")
            circuits.append(qc)
        result = self.simulator.run(circuits).result()
        data = [result.data(b) for b in range(len(circuits))]
        labels = [f"{letter}{w}" for w in range(self.n) for letter in "XYZ"]
        readouts = torch.tensor([[row[label] for label in labels] for row in data])
        new = np.stack([np.asarray(row["state"]) for row in data])
        return self._reverse(new), readouts.float()


class TorchQuantumSimulator:
    """TorchQuantum 0.1.8: batched functional gates on a QuantumDevice; readouts by expval on
    copies (expval rotates the device it measures)."""

    def __init__(self, n_qubits: int) -> None:
        _stand_in_torchvision()
        import torch
        import torchquantum as tq
        import torchquantum.functional as tqf
        from torchquantum.measurement import expval

        self.n, self.torch, self.tq, self.tqf, self.expval = n_qubits, torch, tq, tqf, expval

    def _device(self, batch: int, states=None):
        device = self.tq.QuantumDevice(n_wires=self.n, bsz=batch)
        if states is not None:
            device.set_states(states)
        return device

    def init_state(self, batch: int):
        return self._device(batch).states

    def step(self, state, thetas):
        device, n = self._device(thetas.shape[0], state), self.n
        for layer in range(LAYERS):
            base = 2 * n * layer
            for w in range(n):
                self.tqf.ry(device, wires=w, params=thetas[:, base + w])
            for w in range(n):
                self.tqf.rz(device, wires=w, params=thetas[:, base + n + w])
            for pair in ring(n):
                self.tqf.cnot(device, wires=list(pair))
        values = [self.expval(self._device(thetas.shape[0], device.states), list(range(n)),
                              [observable() for _ in range(n)])
                  for observable in (self.tq.PauliX, self.tq.PauliY, self.tq.PauliZ)]
        return device.states, self.torch.stack(values, -1).flatten(1)  # (B, n·3): X, Y, Z


def _layers(qml, n_qubits: int, angle) -> None:
    """The cell's gates in PennyLane; ``angle(k)`` is slot k."""
    for layer in range(LAYERS):
        base = 2 * n_qubits * layer
        for w in range(n_qubits):
            qml.RY(angle(base + w), wires=w)
        for w in range(n_qubits):
            qml.RZ(angle(base + n_qubits + w), wires=w)
        for control, target in ring(n_qubits):
            qml.CNOT(wires=[control, target])


def _stand_in_torchvision() -> None:
    """TorchQuantum 0.1.8 imports torchvision for its data-set helpers only, and PyPI has no
    CPU torchvision build for a CPU torch; empty stand-ins let it import (none is used here)."""
    try:
        import torchvision  # noqa: F401
        return
    except Exception:  # missing, or built against another torch
        pass

    class Placeholder:
        def __init__(self, *args, **kwargs) -> None:
            pass

    interpolation = enum.Enum("InterpolationMode", "NEAREST BILINEAR BICUBIC BOX HAMMING LANCZOS")
    modules = {
        "torchvision": {},
        "torchvision.datasets": {"VisionDataset": Placeholder, "MNIST": Placeholder,
                                 "FashionMNIST": Placeholder, "CIFAR10": Placeholder},
        "torchvision.datasets.utils": {"download_url": Placeholder},
        "torchvision.transforms": {"InterpolationMode": interpolation, "Compose": Placeholder,
                                   "ToTensor": Placeholder, "Normalize": Placeholder,
                                   "Resize": Placeholder, "CenterCrop": Placeholder},
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module
    sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision.datasets"].utils = sys.modules["torchvision.datasets.utils"]


def make_simulator(impl: str, n_qubits: int):
    """The impl's simulator for n qubits (complex64 where the impl lets us choose)."""
    if impl in ("qrnn", "qrnn-mmap"):
        return QrnnSimulator(n_qubits, gradient="adjoint")
    if impl == "qrnn-autograd":
        return QrnnSimulator(n_qubits, gradient="autograd")
    if impl == "qrnn-gates":
        return QrnnSimulator(n_qubits, fused=False, gradient="autograd")
    makers = {"pennylane": PennyLaneSimulator, "lightning": LightningSimulator,
              "aer": AerSimulator, "torchquantum": TorchQuantumSimulator}
    return makers[impl](n_qubits)


# -- worker: one configuration in a fresh process -------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _reset_high_water_mark() -> None:
    """Restart VmHWM, the kernel's peak-RSS counter of this process (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _high_water_mark_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def check_angles(n_qubits: int):
    """(CHECK_STEPS, CHECK_BATCH, P) angles uniform in [-π, π], the same in every process."""
    generator = np.random.default_rng(1234 + n_qubits)
    shape = (CHECK_STEPS, CHECK_BATCH, 2 * n_qubits * LAYERS)
    return generator.uniform(-np.pi, np.pi, size=shape)


def run_check(impl: str, n_qubits: int) -> dict:
    """Readouts of a few steps of fixed random angles, for the agreement test."""
    import torch

    simulator = make_simulator(impl, n_qubits)
    angles = torch.tensor(check_angles(n_qubits), dtype=torch.float32)
    state, readouts = simulator.init_state(CHECK_BATCH), []
    with torch.no_grad():
        for thetas in angles:
            state, values = simulator.step(state, thetas)
            readouts.append(values.double().numpy().tolist())
    return {"readouts": readouts}


def run_timing(impl: str, n_qubits: int, steps: int, reps: int, budget: float) -> dict:
    """Median training-step time over ``reps`` after one warm-up step (fewer when the warm-up
    says they would not fit in ``budget`` seconds), and peak RSS."""
    import torch

    torch.manual_seed(0)
    simulator = make_simulator(impl, n_qubits)
    readouts_size, n_params = 3 * n_qubits, 2 * n_qubits * LAYERS
    controller = torch.nn.Sequential(torch.nn.Linear(INPUTS + readouts_size, HIDDEN),
                                     torch.nn.GELU(), torch.nn.Linear(HIDDEN, n_params))
    head = torch.nn.Linear(readouts_size, 1)
    optimizer = torch.optim.Adam([*controller.parameters(), *head.parameters()], lr=1e-3)
    inputs = torch.randn(steps, BATCH, INPUTS)
    target = torch.randn(BATCH, 1)
    first = torch.tensor([0.0, 0.0, 1.0] * n_qubits).expand(BATCH, -1)  # z_0: readouts of |0…0⟩

    def training_step() -> None:
        state, readouts = simulator.init_state(BATCH), first
        for x in inputs:
            thetas = controller(torch.cat([x, readouts], 1))  # (B, P)
            state, readouts = simulator.step(state, thetas)
        loss = torch.nn.functional.mse_loss(head(readouts), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def forward_pass() -> None:
        with torch.no_grad():
            state, readouts = simulator.init_state(BATCH), first
            for x in inputs:
                state, readouts = simulator.step(state, controller(torch.cat([x, readouts], 1)))

    run = forward_pass if impl in FORWARD_ONLY else training_step
    setup_rss = _rss_mb()
    walls, cpus = [], []
    while len(walls) < reps + 1:
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
        reps = min(reps, max(1, int(budget / walls[0]) - 1))
        if len(walls) == 1:  # after the warm-up step: what the timed steps add on top
            warm_rss = _rss_mb()
            _reset_high_water_mark()
    return {"seconds": float(np.median(cpus[1:])), "wall_seconds": float(np.median(walls[1:])),
            "cpu_times": cpus[1:], "wall_times": walls[1:], "warmup_wall": walls[0],
            "setup_rss_mb": setup_rss, "warm_rss_mb": warm_rss,
            "step_peak_rss_mb": _high_water_mark_mb(), "peak_rss_mb": _peak_rss_mb(),
            "threads": torch.get_num_threads()}


def run_layer_floor(n_qubits: int, reps: int) -> dict:
    """One forward layer (RY+RZ on every wire, CNOT ring) of the fused plan, B = 32, complex64,
    against copy bandwidth measured here on a large buffer and on a state-sized one."""
    import torch

    import qrnn

    cell = qrnn.Cell.default(n_qubits, n_layers=1, readouts="z")
    plan = qrnn.get_backend("torch.statevector").prepare(cell).plan
    state = plan.run(torch.ones(BATCH, 2**n_qubits, dtype=torch.complex64) / 2 ** (n_qubits / 2),
                     torch.rand(BATCH, cell.n_params))
    thetas = torch.rand(BATCH, cell.n_params)

    def best_of(function, count):  # median CPU time
        function()
        timings = []
        for _ in range(count):
            start = time.process_time()
            function()
            timings.append(time.process_time() - start)
        return float(np.median(timings))

    with torch.no_grad():
        layer = best_of(lambda: plan.run(state, thetas), reps)
    big = torch.empty(2**26, dtype=torch.complex64)  # 512 MiB: memory, not cache
    big_out = torch.empty_like(big)
    big_copy = best_of(lambda: big_out.copy_(big), 5)
    state_out = torch.empty_like(state)
    state_copy = best_of(lambda: state_out.copy_(state), 50)
    state_bytes = state.numel() * state.element_size()
    passes = len([k for block in plan.blocks for k in block.kernels])
    return {
        "layer_seconds": layer,
        "state_bytes": state_bytes,
        "kernel_passes": passes,
        "copy_bandwidth_gbs": 2 * big.numel() * big.element_size() / big_copy / 1e9,
        "cached_copy_bandwidth_gbs": 2 * state_bytes / state_copy / 1e9,
    }


def worker(config: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    mode = config["mode"]
    if mode == "check":
        return run_check(config["impl"], config["n"])
    if mode == "time":
        return run_timing(config["impl"], config["n"], config["T"], config["reps"],
                          config["budget"])
    return run_layer_floor(config["n"], config["reps"])


# -- parent: the grid, the agreement test, the table ----------------------------------------------


def spawn(config: dict, python: str, timeout: float) -> dict:
    """Run ``worker(config)`` in a fresh one-thread process; its last stdout line is JSON."""
    env = {**os.environ, **THREADS_ENV, **IMPL_ENV.get(config.get("impl"), {}),
           "PYTHONPATH": str(REPO)}
    command = [python, __file__, "--worker", json.dumps(config)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def reference_readouts(n_qubits: int) -> np.ndarray:
    """qrnn's complex128 readouts for the check angles: (CHECK_STEPS, CHECK_BATCH, K)."""
    import torch

    import qrnn

    cell = qrnn.Cell.default(n_qubits, n_layers=LAYERS, readouts="xyz")
    program = qrnn.get_backend("torch.statevector", dtype="complex128").prepare(cell)
    state, out = program.init_state(CHECK_BATCH), []
    with torch.no_grad():
        for thetas in torch.tensor(check_angles(n_qubits)):
            state, readouts = program.step(state, thetas)
            out.append(readouts.numpy())
    return np.stack(out)


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "threads_env": THREADS_ENV,
            "load_average": os.getloadavg()}
    try:
        model = [line for line in open("/proc/cpuinfo") if line.startswith("model name")]
        info["cpu"] = model[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    for package in ("torch", "numpy", "pennylane", "pennylane_lightning", "qiskit", "qiskit-aer"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    return info


def predict(results: list[dict], impl: str, n_qubits: int, steps: int):
    """(seconds per step, peak RSS) extrapolated from the largest T measured so far at this n,
    else a lower bound from a smaller n at this T; None when nothing is known."""
    done = [r for r in results if r["impl"] == impl and r["n"] == n_qubits and "seconds" in r
            and r["T"] < steps]
    if not done:
        smaller = [r for r in results if r["impl"] == impl and r["T"] == steps
                   and r["n"] < n_qubits and "error" not in r]
        if any("skipped" in r for r in smaller):
            return float("inf"), 0.0
        timed = [r for r in smaller if "seconds" in r]
        return (max(r["seconds"] for r in timed), 0.0) if timed else None
    last = max(done, key=lambda r: r["T"])
    scale = steps / last["T"]
    seconds = last["seconds"] * (scale**2 if impl in QUADRATIC_IN_T else scale)
    growth = last["peak_rss_mb"] - last["setup_rss_mb"]
    return seconds, last["setup_rss_mb"] + growth * scale


def available_mb() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 1024
    return float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="the docs grid: T=32 for n=4..12 (qrnn to 14), memory vs T at n=12")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma-separated impls")
    parser.add_argument("--n", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14])
    parser.add_argument("--T", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--reps", type=int, default=None, help="timed steps (5; quick: 3)")
    parser.add_argument("--budget", type=float, default=None,
                        help="skip a configuration predicted to take longer (s; 600; quick: 90)")
    parser.add_argument("--torchquantum-python", default=None,
                        help="python of an environment where torchquantum 0.1.8 imports")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "results.json"))
    parser.add_argument("--floor-only", action="store_true",
                        help="only the forward layer against the bandwidth floor, for --n")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    reps = args.reps or (3 if args.quick else 5)
    budget = args.budget or (90.0 if args.quick else 600.0)
    impls = [i for i in args.impls.split(",") if i]
    if "torchquantum" in impls and not args.torchquantum_python:
        print("torchquantum: no --torchquantum-python given, skipped")
        impls.remove("torchquantum")
    grid = []  # (impl, n, T)
    if args.quick:
        for n_qubits in (4, 6, 8, 10, 12, 14):
            grid += [(i, n_qubits, 32) for i in impls
                     if (i != "qrnn-mmap" or n_qubits == 12)
                     and (n_qubits < 14 or i in ("qrnn", "qrnn-autograd"))]
        grid += [(i, 12, t) for t in (128, 512) for i in impls
                 if i in ("qrnn", "qrnn-mmap", "qrnn-autograd")]
    elif not args.floor_only:
        grid = [(i, n, t) for n in args.n for t in sorted(args.T) for i in impls]

    report = {"mode": "quick" if args.quick else "full", "machine": machine(), "batch": BATCH,
              "layers": LAYERS, "hidden": HIDDEN, "reps": reps, "agreement": {},
              "results": [], "layer_floor": []}
    python_of = {i: sys.executable for i in impls}
    if args.torchquantum_python:
        python_of["torchquantum"] = args.torchquantum_python

    # 1) agreement with qrnn's complex128 readouts, per impl and n, before any timing
    agrees = {}
    for n_qubits in sorted({n for _, n, _ in grid}):
        expected = reference_readouts(n_qubits)
        for impl in sorted({i for i, n, _ in grid if n == n_qubits}):
            got = spawn({"mode": "check", "impl": impl, "n": n_qubits}, python_of[impl], budget)
            if "error" in got:
                error, message = float("nan"), got["error"]
            else:
                error = float(np.abs(np.array(got["readouts"]) - expected).max())
                message = "ok" if error <= AGREEMENT else f"max readout error {error:.2e}"
            agrees[impl, n_qubits] = message == "ok"
            report["agreement"][f"{impl}/n={n_qubits}"] = {"max_error": error, "status": message}
            print(f"check {impl:14s} n={n_qubits:2d}: {message}", flush=True)

    # 2) timings, each in a fresh process, skipping what would blow the budget or the memory
    for impl, n_qubits, steps in grid:
        row = {"impl": impl, "n": n_qubits, "T": steps, "forward_only": impl in FORWARD_ONLY}
        predicted = predict(report["results"], impl, n_qubits, steps)
        if not agrees.get((impl, n_qubits)):
            row["skipped"] = "readouts disagree with qrnn or the impl failed to run"
        elif predicted and predicted[0] * (reps + 1) > budget:
            row["skipped"] = f"predicted {predicted[0]:.0f} s per step, over the budget"
        elif predicted and predicted[1] > 0.8 * available_mb():
            row["skipped"] = f"predicted peak {predicted[1] / 1024:.1f} GiB, over free memory"
        else:
            config = {"mode": "time", "impl": impl, "n": n_qubits, "T": steps, "reps": reps,
                      "budget": budget}
            row.update(spawn(config, python_of[impl], 4 * budget))
        report["results"].append(row)
        print(format_row(row), flush=True)

    # 3) forward layer against the memory-bandwidth floor
    for n_qubits in sorted({n for _, n, _ in grid} | set(args.n if args.floor_only else [])):
        floor = spawn({"mode": "floor", "n": n_qubits, "reps": 20}, sys.executable, budget)
        floor["n"] = n_qubits
        report["layer_floor"].append(floor)

    report["machine"]["load_average_end"] = os.getloadavg()
    Path(args.json).write_text(json.dumps(report, indent=1))
    print()
    print(summary(report))
    print(f"\nwrote {args.json}")
    return 0


def format_row(row: dict) -> str:
    head = f"{row['impl']:14s} n={row['n']:2d} T={row['T']:3d}"
    if "skipped" in row:
        return f"{head}  skipped: {row['skipped']}"
    if "error" in row:
        return f"{head}  failed: {row['error']}"
    kind = " (forward only)" if row["forward_only"] else ""
    return (f"{head}  {row['seconds']:8.3f} s{kind}  peak RSS {row['peak_rss_mb']:7.0f} MiB "
            f"(+{row['peak_rss_mb'] - row['setup_rss_mb']:.0f} over setup)")


def summary(report: dict) -> str:
    """The markdown tables: step time by n (T = 32), memory by T (n = 12), targets, the floor."""
    rows = report["results"]
    ok = {(r["impl"], r["n"], r["T"]): r for r in rows if "seconds" in r}
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    sizes = sorted({r["n"] for r in rows})
    lines = ["Training step, T = 32 (CPU seconds, median; aer: forward only):", "",
             "| impl | " + " | ".join(f"n={n}" for n in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for impl in impls:
        cells = [f"{ok[impl, n, 32]['seconds']:.3g}" if (impl, n, 32) in ok else "–"
                 for n in sizes]
        lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    lengths = sorted({r["T"] for r in rows if r["n"] == 12})
    lines += ["", "Memory at n = 12 (MiB): peak RSS of the process; in brackets, the peak of a "
              "timed step above the RSS before it:", "",
              "| impl | " + " | ".join(f"T={t}" for t in lengths) + " |",
              "|---|" + "---:|" * len(lengths)]
    for impl in impls:
        cells = [f"{ok[impl, 12, t]['peak_rss_mb']:.0f} (+{step_peak(ok[impl, 12, t]):.0f})"
                 if (impl, 12, t) in ok else "–" for t in lengths]
        if any(cell != "–" for cell in cells):
            lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    lines += ["", "Targets:"] + targets(ok, report["layer_floor"])
    if report["layer_floor"]:
        lines += ["", "Forward layer vs the memory-bandwidth floor (B = 32, complex64):", "",
                  "| n | layer (ms) | passes | floor: 1 read + 1 write (ms) | ratio | "
                  "floor: passes × (read + write) (ms) | ratio |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for floor in report["layer_floor"]:
            if "layer_seconds" not in floor:
                continue
            ideal = 2 * floor["state_bytes"] / (floor["copy_bandwidth_gbs"] * 1e9)
            moved = floor["kernel_passes"] * ideal
            lines.append(
                f"| {floor['n']} | {1e3 * floor['layer_seconds']:.3f} | {floor['kernel_passes']} "
                f"| {1e3 * ideal:.3f} | {floor['layer_seconds'] / ideal:.1f}× | {1e3 * moved:.3f} "
                f"| {floor['layer_seconds'] / moved:.1f}× |")
    return "\n".join(lines)


def step_peak(row: dict) -> float:
    """Peak RSS of the timed steps above the RSS they started from (MiB)."""
    return row["step_peak_rss_mb"] - row["warm_rss_mb"]


def targets(ok: dict, floors: list[dict]) -> list[str]:
    """The issue's targets, each with its measured ratio, or why it could not be measured."""
    out = []

    def ratio(slow: str, fast: str, n_qubits: int, steps: int):
        a, b = ok.get((slow, n_qubits, steps)), ok.get((fast, n_qubits, steps))
        return None if a is None or b is None else a["seconds"] / b["seconds"]

    for peer, goal in (("torchquantum", 10), ("pennylane", 10), ("lightning", 10),
                       ("qrnn-gates", 3)):
        value = ratio(peer, "qrnn", 10, 32)
        if value is None:
            out.append(f"- qrnn vs {peer} at n=10, T=32: not measured in this run")
        else:
            verdict = "met" if value >= goal else "MISSED"
            out.append(f"- qrnn vs {peer} at n=10, T=32: {value:.1f}× faster "
                       f"(target ≥ {goal}×: {verdict})")
    for impl in ("qrnn", "qrnn-mmap", "qrnn-autograd"):
        short, long = ok.get((impl, 12, 32)), ok.get((impl, 12, 512))
        if not (short and long):
            out.append(f"- {impl} peak memory at n=12, T=32 vs 512: not measured in this run")
            continue
        growth = long["peak_rss_mb"] / short["peak_rss_mb"]
        verdict = "met" if growth < 1.3 else "MISSED"
        out.append(f"- {impl} peak RSS at n=12 from T=32 to T=512: ×{growth:.2f} (target < 1.3×: "
                   f"{verdict}); a timed step's own peak: +{step_peak(short):.0f} → "
                   f"+{step_peak(long):.0f} MiB")
    floor = next((f for f in floors if f.get("n") == 12 and "layer_seconds" in f), None)
    if floor:
        ideal = 2 * floor["state_bytes"] / (floor["copy_bandwidth_gbs"] * 1e9)
        value = floor["layer_seconds"] / ideal
        verdict = "met" if value <= 4 else "MISSED"
        out.append(f"- forward layer at n=12, B=32, complex64: {value:.1f}× the floor of one read "
                   f"and one write of the state (target ≤ 4×: {verdict}); "
                   f"{value / floor['kernel_passes']:.1f}× per pass of its "
                   f"{floor['kernel_passes']} passes")
    else:
        out.append("- forward layer at n=12: not measured in this run")
    return out


if __name__ == "__main__":
    sys.exit(main())
