"""Install the `cift` package (visible-infrared ReID on fastreid) from projects/CIFT/cift.

fastreid 1.4.0 itself is not listed here: its PyPI metadata pins torch 1.13.1, so the Makefile
installs it with `--no-deps` and this file lists what it really needs at run time.
"""
from setuptools import find_packages, setup

# Run-time needs of fastreid 1.4.0 and of cift, listed once (torch/torchvision come from the
# Makefile's TORCH variable so that users can pick their build).
REQUIRES = [
    "numpy",
    "Pillow",
    "yacs>=0.1.8,<0.2",
    "faiss-cpu>=1.7.3,<2",
    "opencv-python-headless>=4.7,<5",
    "scikit-learn>=1.2.1,<2",
    "tabulate>=0.9,<0.10",
    "termcolor>=2.2,<3",
    "tensorboard>=2.12,<3",
    "matplotlib",
    # progress bars of the long steps (data generation, protocol scoring, toy experiment)
    "tqdm>=4.60,<5",
    # model-zoo weights (tensors only, nothing unpickled) and the ONNX export with its check
    "safetensors>=0.4,<1",
    "onnx>=1.14,<2",
    "onnxruntime>=1.16,<2",
]

setup(
    name="cift-reid",
    version="0.1.0",
    description="CIFT (ECCV 2022) and VI-ReID benchmarks as a fastreid project",
    package_dir={"": "projects/CIFT"},
    packages=find_packages(where="projects/CIFT", include=["cift", "cift.*"]),
    python_requires=">=3.9",
    install_requires=REQUIRES,
    extras_require={
        "test": ["pytest", "ruff"],
        # GPU nearest-neighbour search for large galleries (CUDA 12 wheels).
        "gpu": ["faiss-gpu-cu12"],
    },
)
