#if defined(__x86_64__)
#include "kernels/quant_groups.h"

namespace tachyon::kernels {

void install_iq1tq_avx2(TypeTraits* table) { (void)table; }

}  // namespace tachyon::kernels
#endif  // __x86_64__
