"""Training and evaluation on FER2013: produces the models that `emotion` loads."""

# The compact CNNs' filters per stage, unless a run says otherwise: the shipped VGG-style member, and the
# residual one at the same cost per face (training/EXPERIMENTS.md, session 20). Here, not in `training.models`,
# so that the command line can offer the choices without loading TensorFlow.
CNN_WIDTHS: dict[str, tuple[int, ...]] = {"cnn": (32, 64, 128, 256), "rescnn": (24, 48, 96, 192)}
MODELS = (*CNN_WIDTHS, "resnet50v2")
