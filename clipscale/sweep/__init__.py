"""Sweeps: a YAML of axes over a base run -> trials -> Ray Tune (one trial = one Ray Train run)."""
