"""`python -m tests.cluster up|down --dir .local`: the control plane for `make cluster`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.cluster.controlplane import (
    ControlPlane,
    ControlPlaneError,
    default_bin_dir,
    kill_recorded,
)


def up(local: Path) -> int:
    """Start the control plane in the background unless one is already running."""
    directory = local / "cluster"
    plane = ControlPlane(bin_dir=default_bin_dir(), directory=directory, detached=True)
    if plane.state_file.exists():
        kubeconfig = local / "kubeconfig"
        probe = plane.kubectl("get", "--raw=/readyz", check=False, kubeconfig=kubeconfig)
        if probe.returncode == 0:
            print(f"control plane already running; KUBECONFIG={kubeconfig}")
            return 0
        kill_recorded(plane.state_file)
    try:
        plane.start()
    except ControlPlaneError as error:
        print(f"error: {error}\nlogs: {plane.logs}", file=sys.stderr)
        return 1
    # A stable path for people and scripts; the certificates stay under .local/cluster/pki.
    (local / "kubeconfig").write_text(plane.kubeconfig.read_text())
    (local / "kubeconfig").chmod(0o600)
    print(f"control plane up at {plane.api_url} (logs in {plane.logs})")
    print(f"  export KUBECONFIG={(local / 'kubeconfig').resolve()}")
    print(f"  export PATH={plane.bin_dir.resolve()}:$PATH")
    print("  kubectl get nodes")
    return 0


def down(local: Path) -> int:
    """Stop the operator (if `make demo` started one) and the control plane."""
    stopped = kill_recorded(local / "operator.state.json")
    stopped += kill_recorded(local / "cluster" / "state.json")
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=Path(".local"))
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    return up(args.dir) if args.action == "up" else down(args.dir)


if __name__ == "__main__":
    sys.exit(main())
