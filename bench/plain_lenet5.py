"""A minimal hand-written PyTorch loop: LeNet-5 on scikit-learn's digits, the recipe of
specs/lenet5.yaml (32×32 bilinear resize, per-channel normalisation, ±8% random
translation, Adam 4e-3 with a one-epoch warm-up then a cosine decay per epoch, batch 64,
8 epochs, a 10% validation pass per epoch), written without archc. bench/bench_train.py times it against `archc train specs/lenet5.yaml`.
Prints {"test_accuracy": ...} as JSON."""

import json
import math

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c3, self.c5 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5), nn.Conv2d(16, 120, 5)
        self.f6, self.out = nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.c3(x)), 2)
        x = torch.tanh(self.c5(x)).flatten(1)
        return self.out(torch.tanh(self.f6(x)))


def translate(x, t, g):
    shift = (torch.rand(len(x), 2, generator=g) * 2 - 1) * t * 2
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = -shift
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def main():
    torch.manual_seed(0)
    d = load_digits()
    x = F.interpolate(torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16, size=(32, 32),
                      mode="bilinear", align_corners=False)
    y = torch.tensor(d.target)
    idx = torch.arange(len(y))
    rest, test = train_test_split(idx, test_size=0.2, stratify=y, random_state=0)
    train, val = train_test_split(rest, test_size=0.1, stratify=y[rest], random_state=0)
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    model = LeNet5()
    epochs, batch = 8, 64
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    # epoch 0 at half the lr (warm-up), then (1 + cos(π t / 7)) / 2 for t = 0..6
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: 0.5 if e == 0 else (1 + math.cos(math.pi * (e - 1) / (epochs - 1))) / 2)
    g = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        model.train()
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order), batch):
            b = order[i:i + batch]
            loss = F.cross_entropy(model(translate(x[b], 0.08, g)), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            val_acc = (model(x[val]).argmax(1) == y[val]).float().mean().item()
    with torch.no_grad():
        acc = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    print(json.dumps({"test_accuracy": acc, "val_accuracy": val_acc}))


if __name__ == "__main__":
    main()
