"""The local control plane harness: build (build.sh), start/stop (controlplane.py)."""
