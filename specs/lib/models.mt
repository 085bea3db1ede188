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

// The standard 4-block conv net of MAML and Meta-ticket: conv3x3 -> batchnorm -> relu ->
// maxpool(2), four times, then a linear head on the flattened features.
model conv4(hidden: int = 64, blocks: int = 4, classes: int) {
  for i in range(blocks) {
    layer{i + 1}: conv(hidden, 3, pad: 1) -> bn: batchnorm -> relu -> maxpool(2)
  }
  flatten
  head: linear(classes)
}

// ResNet-12 as BOIL uses it: three bias-free conv3x3 -> batchnorm, leaky relu between them,
// added to a conv1x1 -> batchnorm projection of the input, then leaky relu and maxpool(2).
//
// Parameter count (paper Table 5: 8.0 M) on 3x84x84 input, 5-way: 7,999,365 = 7,996,800 in
// the four blocks (bias-free 3x3 and 1x1 convs, affine batchnorms) + 2,565 in a 512 -> 5
// head with bias after global average pooling. Flattening the 5x5x512 map instead would
// give a 12,800-input head (8.06 M); biases on the convs would add 4,800.
block resnet12_block(c: int) {
  residual {
    conv1: conv(c, 3, pad: 1, bias: false) -> bn: batchnorm -> leaky_relu(0.1)
    conv2: conv(c, 3, pad: 1, bias: false) -> bn: batchnorm -> leaky_relu(0.1)
    conv3: conv(c, 3, pad: 1, bias: false) -> bn: batchnorm
  } shortcut {
    conv: conv(c, 1, bias: false) -> bn: batchnorm
  }
  leaky_relu(0.1) -> maxpool(2)
}

model resnet12(channels: list[int] = [64, 128, 256, 512], classes: int) {
  for i, c in channels {
    layer{i + 1}: resnet12_block(c)
  }
  global_avgpool -> flatten
  head: linear(classes)
}

// WRN-28-k (Zagoruyko & Komodakis): a bias-free conv3x3 stem to 16 channels, three groups
// of four pre-activation basic blocks of widths 16k, 32k, 64k with strides 1, 2, 2, then
// batchnorm -> relu -> global average pooling and a linear head.
//
// A block that changes width or stride applies its bn -> relu to the input once, feeding
// both its branch and its conv1x1 shortcut; a block of equal width keeps the whole
// pre-activation inside the branch and adds the untouched input. The first block of each
// group is the former, even for k = 1 where the first group keeps width 16 (there the
// reference implementation uses an identity shortcut; this one has a 256-weight projection).
//
// Parameter count (paper Table 5: 36.5 M) for wrn28(k: 10) on 3x84x84 input, 5-way:
// 36,475,989 = 432 stem + 36,471,072 in the groups (bias-free convs, bias-free 1x1
// projections, affine batchnorms) + 1,280 final batchnorm + 3,205 in a 640 -> 5 head.
block wrn_down(width: int, stride: int, dropout: float) {
  bn: batchnorm -> relu
  residual {
    conv1: conv(width, 3, stride: stride, pad: 1, bias: false) -> bn: batchnorm -> relu -> dropout(dropout)
    conv2: conv(width, 3, pad: 1, bias: false)
  } shortcut {
    conv: conv(width, 1, stride: stride, bias: false)
  }
}

block wrn_same(width: int, dropout: float) {
  residual {
    bn: batchnorm -> relu
    conv1: conv(width, 3, pad: 1, bias: false) -> bn: batchnorm -> relu -> dropout(dropout)
    conv2: conv(width, 3, pad: 1, bias: false)
  }
}

block wrn_group(width: int, stride: int, dropout: float) {
  block1: wrn_down(width, stride, dropout)
  for j in range(3) {
    block{j + 2}: wrn_same(width, dropout)
  }
}

model wrn28(k: int = 10, dropout: float = 0.0, classes: int) {
  stem: conv(16, 3, pad: 1, bias: false)
  group1: wrn_group(16 * k, 1, dropout)
  group2: wrn_group(32 * k, 2, dropout)
  group3: wrn_group(64 * k, 2, dropout)
  bn: batchnorm -> relu -> global_avgpool -> flatten
  head: linear(classes)
}
