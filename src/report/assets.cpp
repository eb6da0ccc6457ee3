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
TAILOR_INCBIN(tailor_app_html, TAILOR_APP_HTML)
TAILOR_INCBIN(tailor_app_js, TAILOR_APP_JS)
TAILOR_INCBIN(tailor_app_css, TAILOR_APP_CSS)
#endif

namespace tailor {

WebAssets web_assets() {
#if defined(TAILOR_VEGA_JS)
  auto view = [](const char* begin, const char* end) { return std::string_view(begin, static_cast<size_t>(end - begin)); };
  return {view(tailor_vega_js, tailor_vega_js_end),         view(tailor_vega_lite_js, tailor_vega_lite_js_end),
          view(tailor_vega_embed_js, tailor_vega_embed_js_end), view(tailor_app_html, tailor_app_html_end),
          view(tailor_app_js, tailor_app_js_end),           view(tailor_app_css, tailor_app_css_end)};
#else
  return {};
#endif
}

}  // namespace tailor
