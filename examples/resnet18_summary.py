"""The main job: summarise a real model (torchvision's resnet18, built without weights)."""

from torchvision.models import resnet18

import torchtally as tt

report = tt.summary(resnet18(), (1, 3, 224, 224))
print()
print(f"total_params={report.total_params:,}  total_macs={report.total_macs:,}  total_flops={report.total_flops:,}")
