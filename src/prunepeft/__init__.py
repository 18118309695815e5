"""prunepeft: which PEFT modules go into which layers, found by iterative hybrid pruning."""

__version__ = "0.1.0"
