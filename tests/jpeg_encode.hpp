#pragma once
// Pictures made into JPEG bytes by libjpeg, for the tests of tailor's JPEG reading.
// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
#include <cstdlib>
#include <jpeglib.h>

#include <string>
#include <vector>

#include "data/image.hpp"

namespace tailor::testing {

// img's planes (1 grey, 3 RGB) as a JPEG of that colour at `quality`; full_chroma keeps every
// colour sample (no subsampling of the chroma planes).
inline std::string encode_jpeg(const Image& img, int quality, bool full_chroma = false) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = static_cast<JDIMENSION>(img.width);
  c.image_height = static_cast<JDIMENSION>(img.height);
  c.input_components = img.channels;
  c.in_color_space = img.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  if (full_chroma)
    for (int i = 0; i < c.num_components; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  std::vector<unsigned char> row(static_cast<size_t>(img.width) * img.channels);
  while (c.next_scanline < c.image_height) {
    const size_t y = c.next_scanline;
    for (int x = 0; x < img.width; ++x)
      for (int ch = 0; ch < img.channels; ++ch)
        row[static_cast<size_t>(x) * img.channels + ch] = img.pixels[ch * img.plane() + y * img.width + x];
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  std::string bytes(reinterpret_cast<const char*>(out), size);
  jpeg_destroy_compress(&c);
  std::free(out);
  return bytes;
}

}  // namespace tailor::testing
