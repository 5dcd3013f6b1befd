"""The C kernels and headers generated code uses, shipped as package data."""
from pathlib import Path

SOURCE_DIR = Path(__file__).parent
