// DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the
// authors' PyTorch code (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py, vendored in test/gan/)
// op for op, so that after the same seed its output, its gradient and the generator's position afterwards
// equal theirs. The one implementation: the facade's diffAugment (ts/gan/recipes/diff-augment.ts, through
// diff_augment_wrap.cc) and the fused step both call it. Plain C++ over LibTorch.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace ltg {

// The augmentations, named in a policy string as the authors' AUGMENT_FNS keys.
enum class DiffAugmentPolicy {
  Color,        // 'color': brightness, saturation, contrast (one torch.rand per image each)
  Translation,  // 'translation': shifted by up to 1/8 of the size, zero-filled
  Cutout,       // 'cutout': a zeroed square of half the size
};

// The names, in the authors' order: color, translation, cutout.
const std::vector<std::string>& diffAugmentPolicyNames();
const std::string& diffAugmentPolicyName(DiffAugmentPolicy p);

// A policy string's augmentations in the order given ("color,cutout"; "" is none, as the authors' `if
// policy`). Split at every comma, names matched exactly. Throws c10::TypeError for an unknown name,
// labelled `what`, e.g.
//   diffAugment: policy: unknown policy "translaton" (did you mean 'translation'?) in "color,translaton"; known: color, translation, cutout
std::vector<DiffAugmentPolicy> parseDiffAugmentPolicy(const std::string& policy, const std::string& what = "diffAugment: policy");

// DiffAugment(x, policy) of a floating-point batch x [N, C, H, W] (channels first): each augmentation in
// order, then contiguous(); no policies return x itself. Draws from the global default generator of x's
// device (at::rand for color, at::randint for translation and cutout) in the authors' order and shapes.
// Differentiable with respect to x (the autograd graph is recorded when grad mode is on); x is left as
// it was. Throws c10::Error for another rank, c10::TypeError for a non-floating dtype.
at::Tensor diffAugment(const at::Tensor& x, const std::vector<DiffAugmentPolicy>& policies);

}  // namespace ltg
