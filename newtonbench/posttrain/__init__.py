"""Post-training of diffusers image-to-video models on NewtonBench (`newtonbench posttrain`, `sample`).

- config.py   TrainConfig, the frozen run configuration saved in every checkpoint
- families.py the supported pipeline families (Wan 2.1/2.2 I2V, CogVideoX I2V) and their conventions
- data.py     a bench's clips as a torch Dataset
- loop.py     the accelerate training loop (SFT and DRaFT-K reward fine-tuning, LoRA via peft)
- sample.py   one video per bench clip with the pipeline's own sampler
- cli.py      the click commands
- testing.py  tiny random pipelines and a tiny bench for tests and benchmarks

Nothing here is imported by `newtonbench --help`; torch and diffusers load inside the commands.
"""
