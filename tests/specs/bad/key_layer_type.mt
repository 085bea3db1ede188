import "../../../specs/lib/models.mt"

model tiny(classes: int) {
  flatten
  layer1: linaer(64) -> relu
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
  inner { steps: "one", lr: 0.4 }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 10), itertions: 100 }
}
// expect: 5:11: unknown layer `linaer`
// expect: 21:18: `inner.steps` must be an integer, got a string ("one")
// expect: 22:80: unknown field `itertions` in `outer`
