"""PAL Studio's trainer: the part of the engine that owns tensors (plain PyTorch >= 1.13).

The TypeScript engine starts it as a child process; it reads token ids, writes weights, and
streams progress back as JSON lines. Nothing here tokenizes text or builds prompts.
"""

__version__ = "0.1.0"
