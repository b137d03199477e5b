"""Training and evaluation on FER2013: produces the models that `emotion` loads."""

# The compact CNNs' filters per stage, unless a run says otherwise: the shipped VGG-style member, and the
# residual one at the same cost per face (run res-61, training/EXPERIMENTS.md). Here, not in `training.models`,
# so that the command line can offer the choices without loading TensorFlow.
CNN_WIDTHS: dict[str, tuple[int, ...]] = {"cnn": (32, 64, 128, 256), "rescnn": (24, 48, 96, 192)}
MODELS = (*CNN_WIDTHS, "resnet50v2")
# Epochs unless a run says otherwise: the shipped members' recipe for the compact CNNs (60, cosine-decayed), and
# for ResNet50V2, whose 224x224 epochs take about 80 minutes each on a 2-core CPU.
DEFAULT_EPOCHS: dict[str, int] = {"cnn": 60, "rescnn": 60, "resnet50v2": 12}
