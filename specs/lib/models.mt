// Model library: the paper's networks, written in the language.

// The paper's MLP (Meta-ticket section 4.1): linear -> batchnorm -> relu blocks, a width
// factor multiplying every hidden size, and a linear head.
model mlp(hidden: list[int], width: int = 1, classes: int) {
  flatten
  for i, h in hidden {
    layer{i + 1}: linear(h * width) -> bn: batchnorm(eps: 1e-3) -> relu
  }
  head: linear(classes)
}

// Sinusoid regression network (paper Appendix C): 1-40-40-1 with relu, no batchnorm.
model sine_mlp(hidden: int = 40) {
  layer1: linear(hidden) -> relu
  layer2: linear(hidden) -> relu
  head: linear(1)
}
