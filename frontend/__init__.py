"""mcuc.frontend: model readers (TFLite, ONNX) that produce the IR."""
