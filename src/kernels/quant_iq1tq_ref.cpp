#include "kernels/quant_groups.h"

namespace tachyon::kernels {

void install_iq1tq_ref(TypeTraits* table) { (void)table; }

}  // namespace tachyon::kernels
