// The fused step's description read from JS through js_args' readers, so that an error names the field,
// the value and what was allowed: the layer lists (ts/nn/from-spec.ts's toNativeLayers writes them) and
// the step spec (ts/gan/step-spec.ts's GanStepSpec, whose strings gan_spec.h's enums stand for).
#pragma once
#include "gan_spec.h"
#include "js_args.h"
#include "sequential.h"

namespace ltg {

// [{ kind, name, ...the fields of that kind }]; a layer's name is `which` + "." + name, as in the state
// dict, and names it in errors: "GanStep: generator.0.weight: expected a Tensor, ...".
Sequential layersFromJs(const js::Value& v, const char* which);

// { loss, realLabel, fakeLabel, dLossReduction, detachFakeForD, gNoise, separateDBackward, noise, conditioning? }:
// "GanStep: spec.dLossReduction: expected one of 'sum', 'mean', got 'meen'".
GanSpec ganSpecFromJs(const js::Value& v);

}  // namespace ltg
