model m(classes: int) {
  flatten
  for i in range(1000) {
    for j in range(1000) {
      relu
    }
  }
  head: linear(classes)
}
experiment e {
  data { train: omniglot(split: "train") }
  task { ways: 5, shots: 1 }
  model: m(classes: task.ways)
  params { "**": meta }
  inner { lr: 0.4 }
  outer { optimizer: sgd(lr: 1), iterations: 10 }
}
// expect: 5:7: the model expands to more than 10,000 layers
