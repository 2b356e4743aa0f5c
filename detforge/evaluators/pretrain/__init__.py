"""BigDetection's detector pre-training benchmark on mmdet 3 / mmengine.

Stage 1 pre-trains a detector on a built dataset's COCO export; stage 2
fine-tunes on a downstream COCO-format set at several fractions, with and
without stage 1; the summary reports AP per fraction and the gain.
"""

from detforge.evaluators.pretrain.benchmark import BenchmarkPlan, run_benchmark, summarize

__all__ = ["BenchmarkPlan", "run_benchmark", "summarize"]
