"""Using trained models outside training: model-zoo entries (safetensors weights, resolved
config, metrics), ONNX export of the feature extractor, and gallery search.

Not imported by `import cift` (nothing here registers anything); onnx and onnxruntime are
imported only by the functions that need them.
"""
from .inference import LoadedModel, inference_config, load_inference_model, load_model_from_files
from .model_zoo import run_metrics, write_entry
from .safetensors_io import hashed_name, safetensors_metadata, state_dict_to_safetensors

__all__ = ["LoadedModel", "inference_config", "load_inference_model", "load_model_from_files",
           "run_metrics", "write_entry", "hashed_name", "safetensors_metadata",
           "state_dict_to_safetensors"]
