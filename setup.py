"""dreamfusion_jax: DreamFusion (text-to-3D with Score Distillation Sampling) in JAX/Flax."""
from setuptools import find_packages, setup

setup(
    name="dreamfusion_jax",
    version="0.1.0",
    description="A faithful JAX/Flax reimplementation of DreamFusion (Poole et al., ICLR 2023).",
    packages=find_packages(include=["dreamfusion_jax", "dreamfusion_jax.*"]),
    # The report's 3-D viewer (scripts/vendor_model_viewer.sh vendors it from npm).
    package_data={"dreamfusion_jax": ["vendor/model-viewer/*"]},
    python_requires=">=3.11",  # jax 0.10.2 needs Python >= 3.11.
    install_requires=[
        # JAX stack: pinned to the versions the test suite runs against.
        "jax==0.10.2",
        "jaxlib==0.10.2",
        "flax==0.12.8",
        "optax==0.2.8",
        "orbax-checkpoint==0.12.8",
        "ml_collections==1.1.0",
        "absl-py>=2.1",
        # diffusers dropped its Flax classes after 0.35 and transformers after 4.x:
        # these are the last releases with FlaxUNet2DConditionModel / FlaxCLIPTextModel.
        "diffusers==0.35.2",
        "transformers==4.57.6",
        "numpy>=1.26",
        "imageio>=2.34",
        "imageio-ffmpeg>=0.5",
        "tqdm>=4.66",
        "tensorboardX>=2.6",
        # run_render.py. Pillow: the contact sheet's labels (load_default(size=) needs 10.1).
        "Pillow>=10.1",
        # The mesh: measure.marching_cubes(level=, spacing=, gradient_direction=) is the 0.19 API
        # (tested with 0.26.0).
        "scikit-image>=0.19",
        # .glb / .obj export with vertex colours (tested with 5.2.0).
        "trimesh>=4.0",
        # The textured mesh's UV atlas (texture.py). Pinned to the release tested: the bindings
        # are pre-1.0 (0.0.x), so a minor release may change the Atlas/PackOptions API.
        "xatlas==0.0.11",
        # The report's training curves (run_render.py's index.html; tested with 3.11.2).
        "matplotlib>=3.8",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            # Reference Distributed Shampoo (google-research), used only to check ours.
            "precondition-opt==0.3.0",
            "chex==0.1.92",  # imported by precondition-opt, which does not declare it.
            # diffusers' and transformers' PyTorch models: the independent computation the Flax
            # Stable Diffusion backend is checked against (and what converts PyTorch-only
            # weights). 2.13.0 is the CPU wheel our machines carry; see the README.
            "torch==2.13.0",
            # Drives Debian's chromium (/usr/bin/chromium) for the report's browser test; its
            # own browser downloads are never used.
            "playwright==1.65.2",
        ],
    },
)
