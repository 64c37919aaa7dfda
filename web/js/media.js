// Which files are images and which are videos: the same suffix lists as hashing/media.py, with the
// browser's MIME type as a fallback for files without a usable name.
const IMAGE_SUFFIXES = new Set('.jpg .jpeg .jpe .jfif .png .webp .gif .bmp .tif .tiff .heic .heif .avif'.split(' '));
const VIDEO_SUFFIXES = new Set('.mp4 .m4v .mov .avi .mkv .webm .wmv .flv .mpg .mpeg .3gp .ts .mts'.split(' '));

export function mediaKind(file) {
  const dot = file.name.lastIndexOf('.');
  const suffix = dot >= 0 ? file.name.slice(dot).toLowerCase() : '';
  if (IMAGE_SUFFIXES.has(suffix)) return 'image';
  if (VIDEO_SUFFIXES.has(suffix)) return 'video';
  if (file.type.startsWith('image/')) return 'image';
  if (file.type.startsWith('video/')) return 'video';
  return null;
}

// The server's rules for PDQ values (hashing/signals/pdq.py), applied before sending so that the
// person sees which photo is unusable instead of one error for the whole request.
export const PDQ_MIN_QUALITY = 50;
const PDQ_MIN_BITS_SET = 16;

export function pdqProblem(signal) {
  if (signal.quality < PDQ_MIN_QUALITY) return 'low_quality';
  let bits = 0;
  for (const ch of signal.value) {
    let v = parseInt(ch, 16);
    while (v) {
      bits += v & 1;
      v >>= 1;
    }
  }
  if (bits < PDQ_MIN_BITS_SET || bits > 256 - PDQ_MIN_BITS_SET) return 'degenerate';
  return null;
}
