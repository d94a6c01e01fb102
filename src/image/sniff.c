/*
 * sniff.c — image_sniff (sniff.h): an image format from the magic bytes of a file's start,
 * the one sniffer of the ingest walk and of the server's uploads.
 */
#include "image/sniff.h"

#include <string.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* `len` bytes at `head` start with the `n` bytes of `magic`. */
static int starts(const uint8_t *head, size_t len, const void *magic, size_t n)
{
    return len >= n && memcmp(head, magic, n) == 0;
}

/* HEIF family brands that mean "HEIF image" (HEVC coded or generic image brands). */
static int heif_brand(const uint8_t *b)
{
    static const char *const brands[] = {"heic", "heix", "heim", "heis", "hevc", "hevx",
                                         "hevm", "hevs", "mif1", "msf1", "mif2", "heif"};
    for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
        if (memcmp(b, brands[i], 4) == 0)
            return 1;
    return 0;
}

static int avif_brand(const uint8_t *b)
{
    return memcmp(b, "avif", 4) == 0 || memcmp(b, "avis", 4) == 0;
}

/* ISO-BMFF "ftyp" box: "avif" if any brand is AVIF, "heif" if any is a HEIF image brand,
 * else NULL (MP4/QuickTime video and the like). Brands past `len` are not looked at. */
static const char *sniff_ftyp(const uint8_t *h, size_t len)
{
    if (len < 12 || memcmp(h + 4, "ftyp", 4) != 0)
        return NULL;
    uint32_t box = be32(h);
    if (box < 16 || box > 4096 || (box - 16) % 4 != 0)
        return NULL;
    size_t end = box < len ? box : len;
    int heif = heif_brand(h + 8), avif = avif_brand(h + 8);
    for (size_t o = 16; o + 4 <= end; o += 4) {
        heif |= heif_brand(h + o);
        avif |= avif_brand(h + o);
    }
    if (avif)
        return "avif";
    return heif ? "heif" : NULL;
}

/* BMP: "BM", then a plausible header: a known DIB header size and a pixel data offset
 * past the headers. */
static const char *sniff_bmp(const uint8_t *h, size_t len)
{
    if (len < 18 || h[0] != 'B' || h[1] != 'M')
        return NULL;
    uint32_t dib = le32(h + 14), data = le32(h + 10);
    static const uint32_t sizes[] = {12, 16, 40, 52, 56, 64, 108, 124};
    int ok = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        ok |= dib == sizes[i];
    if (!ok || data < 14 + dib || data > (1u << 28))
        return NULL;
    return "bmp";
}

static int pnm_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

const char *image_sniff(const uint8_t *h, size_t len)
{
    if (!h)
        return NULL;
    if (starts(h, len, "\xFF\xD8\xFF", 3))
        return "jpeg";
    if (starts(h, len, "\x89PNG\r\n\x1A\n", 8))
        return "png";
    if (starts(h, len, "GIF87a", 6) || starts(h, len, "GIF89a", 6))
        return "gif";
    if (len >= 12 && memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WEBP", 4) == 0)
        return "webp";
    if (starts(h, len, "II*\0", 4) || starts(h, len, "MM\0*", 4) ||
        starts(h, len, "II+\0", 4) || starts(h, len, "MM\0+", 4)) /* + BigTIFF */
        return "tiff";
    const char *s = sniff_bmp(h, len);
    if (s)
        return s;
    s = sniff_ftyp(h, len);
    if (s)
        return s;
    /* JPEG XL: bare codestream or ISO-BMFF container. */
    if (starts(h, len, "\xFF\x0A", 2) ||
        starts(h, len, "\0\0\0\x0CJXL \r\n\x87\n", 12))
        return "jxl";
    /* JPEG 2000: JP2 container or bare J2K codestream (SOC then SIZ marker). */
    if (starts(h, len, "\0\0\0\x0CjP  \r\n\x87\n", 12) ||
        starts(h, len, "\xFF\x4F\xFF\x51", 4))
        return "jp2";
    /* Netpbm: P1..P6 then whitespace; PF/Pf (float maps) likewise. */
    if (len >= 3 && h[0] == 'P' && pnm_space(h[2])) {
        if (h[1] >= '1' && h[1] <= '6')
            return "pnm";
        if (h[1] == 'F' || h[1] == 'f')
            return "pfm";
    }
    if (starts(h, len, "\x76\x2F\x31\x01", 4))
        return "exr";
    if (starts(h, len, "#?RADIANCE\n", 11) || starts(h, len, "#?RGBE\n", 7))
        return "hdr";
    /* Photoshop: "8BPS" + version 1 (PSD) or 2 (PSB). */
    if (len >= 6 && memcmp(h, "8BPS\0", 5) == 0 && (h[5] == 1 || h[5] == 2))
        return "psd";
    return NULL;
}
