// llama (and the files that load as llama: Mistral, SmolLM, DeepSeek distills): pre-norm
// blocks, separate q/k/v, adjacent-pair rope (Llama-3 frequency factors come as the
// rope_freqs tensor), SwiGLU. The defaults of LayerConfig are this family.
#include "model/arch.h"
#include "model/hparams.h"

namespace tachyon::model {

namespace {
Status configure_llama(const gguf::File&, Hparams*) { return Status::ok(); }
}  // namespace

extern const Family kLlamaFamily{"llama", kernels::RopeMode::kNorm, configure_llama};

}  // namespace tachyon::model
