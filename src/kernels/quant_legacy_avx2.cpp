#if defined(__x86_64__)
#include "kernels/quant_groups.h"

namespace tachyon::kernels {

void install_legacy_avx2(TypeTraits* table) { (void)table; }

}  // namespace tachyon::kernels
#endif  // __x86_64__
