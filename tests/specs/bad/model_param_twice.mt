model m(classes: int, classes: int) {
  flatten -> linear(64) -> relu
  head: linear(classes)
}

experiment broken {
  data {
    root  = env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train = omniglot(split: "train")
    test  = omniglot(split: "test")
  }
  task { ways: 5, shots: 1, queries: 5 }
  model = m(classes: task.ways)
  params {
    "**.weight": masked
    "head.**", "**.bias": fixed
  }
  inner { steps: 1, lr: 0.4 }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 10), iterations: 100 }
}
// expect: 1:23: `m` declares parameter `classes` twice
