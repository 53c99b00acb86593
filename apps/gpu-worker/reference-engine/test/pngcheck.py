import sys, zlib, struct
def check(path, raw_path=None):
    d = open(path,'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', 'signature'
    i = 8; chunks = []; idat = b''
    while i < len(d):
        n, = struct.unpack('>I', d[i:i+4]); t = d[i+4:i+8]; body = d[i+8:i+8+n]
        crc, = struct.unpack('>I', d[i+8+n:i+12+n])
        assert zlib.crc32(t+body) & 0xffffffff == crc, 'crc %s' % t
        chunks.append((t, body)); i += 12 + n
        if t == b'IDAT': idat += body
    assert chunks[0][0] == b'IHDR' and chunks[-1][0] == b'IEND'
    w, h, bd, ct, cm, fm, il = struct.unpack('>IIBBBBB', chunks[0][1])
    assert (bd, ct, cm, fm, il) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(idat)   # checks adler32 too
    stride = w*3; assert len(raw) == h*(stride+1), 'raw len'
    out = bytearray(); prev = bytearray(stride)
    for y in range(h):
        f = raw[y*(stride+1)]; line = bytearray(raw[y*(stride+1)+1:(y+1)*(stride+1)])
        assert f <= 4
        for x in range(stride):
            a = line[x-3] if x >= 3 else 0; b = prev[x]; c = prev[x-3] if x >= 3 else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + ((a+b)>>1)) & 255
            elif f == 4:
                p = a+b-c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
                pr = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
        out += line; prev = line
    if raw_path:
        assert bytes(out) == open(raw_path,'rb').read(), 'pixels differ'
    texts = {}
    for t, body in chunks:
        if t == b'tEXt': k, v = body.split(b'\0', 1); texts[k.decode('latin-1')] = v.decode('latin-1')
        if t == b'iTXt':
            k, rest = body.split(b'\0', 1); assert rest[:2] == b'\0\0'
            rest = rest[2:]; lang, rest = rest.split(b'\0', 1); tk, v = rest.split(b'\0', 1); texts[k.decode()] = v.decode('utf-8')
    return w, h, len(d), [c[0].decode() for c in chunks], texts
if __name__ == '__main__':
    for p in sys.argv[1:]:
        raw = None
        if '=' in p: p, raw = p.split('=')
        w, h, n, names, texts = check(p, raw)
        print('OK', p, w, h, n, 'bytes', ' '.join(sorted(set(names))), texts)
