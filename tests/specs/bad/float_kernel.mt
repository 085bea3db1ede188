model m(classes: int) {
  conv(8, 3.0) -> flatten
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
// expect: 2:3: `conv`'s `kernel` must be an integer, got a number (3.0)
