// Compiles <torch/torch.h> once into the shared precompiled header (see CMakeLists.txt).
