#include "report/assets.hpp"

#if defined(TAILOR_VEGA_JS)
// .incbin copies each file into read-only data at build time: no giant literal to compile.
#define TAILOR_INCBIN(sym, path)                                                    \
  __asm__(".section .rodata\n.balign 16\n.global " #sym "\n" #sym ":\n.incbin \"" path \
          "\"\n.global " #sym "_end\n" #sym "_end:\n.byte 0\n.previous\n");          \
  extern "C" const char sym[];                                                      \
  extern "C" const char sym##_end[];

TAILOR_INCBIN(tailor_vega_js, TAILOR_VEGA_JS)
TAILOR_INCBIN(tailor_vega_lite_js, TAILOR_VEGA_LITE_JS)
TAILOR_INCBIN(tailor_vega_embed_js, TAILOR_VEGA_EMBED_JS)
#endif

namespace tailor {

WebAssets web_assets() {
#if defined(TAILOR_VEGA_JS)
  return {{tailor_vega_js, static_cast<size_t>(tailor_vega_js_end - tailor_vega_js)},
          {tailor_vega_lite_js, static_cast<size_t>(tailor_vega_lite_js_end - tailor_vega_lite_js)},
          {tailor_vega_embed_js, static_cast<size_t>(tailor_vega_embed_js_end - tailor_vega_embed_js)}};
#else
  return {};
#endif
}

}  // namespace tailor
