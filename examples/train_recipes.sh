#!/usr/bin/env bash
# Training recipes with archc (docs/train.md). Run from the repository root:
#   bash examples/train_recipes.sh            # the digits recipes (no download, ~1 min on 2 cores)
#   CIFAR10=~/data/cifar-10-batches-py bash examples/train_recipes.sh   # + the seeds' VGG-16 recipe
# EPOCHS=2 shortens every run (the tests use it). Running it again replaces its runs (--overwrite).
set -euo pipefail
OUT=${OUT:-runs/recipes}
EPOCHS_FLAG=${EPOCHS:+--epochs $EPOCHS}

# 1. LeNet-5 on scikit-learn's digits, as specs/lenet5.yaml's train: section says
#    (Adam 4e-3 with warm-up and cosine decay, batch 64, normalised, ±8% translations, 8 epochs): ~98% test accuracy.
archc train specs/lenet5.yaml --out "$OUT/lenet5" --overwrite $EPOCHS_FLAG

# 2. Continue it for 5 more epochs (the optimizer, schedule and RNG states carry on; a run
#    that already has all its epochs is refused, so --epochs counts past the first run's).
archc train --resume "$OUT/lenet5" --epochs "$(( ${EPOCHS:-8} + 5 ))"

# 3. Transfer learning: start from its best weights, replace the head (a fresh 10-way
#    linear layer: --set classes=... changes its size), freeze the convolutions, and
#    train the rest with SGD + Nesterov, a warm-up and a cosine schedule.
archc train specs/lenet5.yaml --init-from "$OUT/lenet5/best.pt" --freeze c1,c3,c5 \
  --set 'train.optimizer={name: sgd, lr: 0.05, momentum: 0.9, nesterov: true}' \
  --set 'train.schedule={name: cosine, warmup_epochs: 1}' --out "$OUT/lenet5-head" --overwrite $EPOCHS_FLAG

# 4. Measure a checkpoint on the test split.
archc evaluate specs/lenet5.yaml --weights "$OUT/lenet5-head/best.pt"

# 5. Binary classification and regression on two real tables that ship in scikit-learn
#    (breast cancer: ~97% test accuracy; diabetes: test MSE ~0.6 on standardised targets,
#    where always predicting the mean scores 1.0).
python examples/tabular_data.py "$OUT/data"
archc train examples/cancer_binary.yaml --data "$OUT/data/cancer.npz" --out "$OUT/cancer" --overwrite $EPOCHS_FLAG
archc train examples/diabetes_regression.yaml --data "$OUT/data/diabetes.npz" --out "$OUT/diabetes" --overwrite $EPOCHS_FLAG

# 6. The other tasks have their own example specs (docs/train.md):
#    segmentation — archc train examples/unet_shapes.yaml   (U-Net on synthetic shapes)
#    GAN          — archc train examples/gan_digits.yaml     (a small DCGAN on the digits)

# 7. The seeds' CIFAR-10 recipe (VGG-16 for 32×32 images: SGD 0.1 momentum 0.9, 0.01
#    after epoch 30, L2 1e-5, flips and padded crops, the best model on validation kept),
#    for users who have the CIFAR-10 "python version" on disk. Use a GPU: --device cuda.
if [ -n "${CIFAR10:-}" ]; then
  archc train specs/vgg16_cifar10.yaml --data "$CIFAR10" --out "$OUT/vgg16-cifar10" --overwrite $EPOCHS_FLAG
fi
