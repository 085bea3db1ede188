import "../../../specs/lib/models.mt"

model tiny(classes: int) {
    layer1: linear(64) -> relu
  head: linear(classes)
}

experiment broken {
  data {
    root  = env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train = omniglot(split: "train")
    test  = omniglot(split: "test")
  }
  task { ways: 5, shots: 1, queries: 5 }
  model = tiny(classes: task.ways)
  params {
    "**.weight": masked
    "head.**", "**.bias", "**.bn.**": fixed
  }
  inner { steps: 1, lr: 0.4 }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 10), iterations: 100 }
}
// expect: 4:13: linear expects a flat vector of features, but its input has shape (1, 28, 28)
