// The paper's conv nets on mini-ImageNet's 3x84x84 images, for `mtdsl show` and the
// parameter-count tests (paper Table 5: ResNet-12 8.0 M, WRN-28-10 36.5 M).
import "../../specs/lib/models.mt"

experiment resnet12_ticket {
  data { train: mini_imagenet(split: "train", size: 84) }
  task { ways: 5, shots: 5, queries: 15 }
  model: resnet12(classes: task.ways)

  params {
    "**.weight": masked
    "head.**", "**.bn.**": fixed  // the convs have no bias
  }

  inner { steps: 1, test_steps: 3, lr: 0.1 }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), iterations: 1000, meta_batch: 4 }
}

experiment wrn28_ticket extends resnet12_ticket {
  model: wrn28(k: 10, classes: task.ways)
}

experiment conv4_maml extends resnet12_ticket {
  model: conv4(classes: task.ways)
  params: { "**": meta }
  outer { optimizer: adam(lr: 0.001) }
}
