//! The buzhash base table and the hash primitives (FORMAT.md §6.2).

/// Borg's buzhash base table `BASE[0..256]` (spec Appendix B); the table used for a seed is
/// `BASE[i] ^ seed`.
#[rustfmt::skip]
pub const BUZHASH_BASE: [u32; 256] = [
    0xe7f831ec, 0xf4026465, 0xafb50cae, 0x6d553c7a, 0xd639efe3, 0x19a7b895,
    0x9aba5b21, 0x5417d6d4, 0x35fd2b84, 0xd1f6a159, 0x3f8e323f, 0xb419551c,
    0xf444cebf, 0x21dc3b80, 0xde8d1e36, 0x84a32436, 0xbeb35a9d, 0xa36f24aa,
    0xa4e60186, 0x98d18ffe, 0x3f042f9e, 0xdb228bcd, 0x096474b7, 0x5c20c2f7,
    0xf9eec872, 0xe8625275, 0xb9d38f80, 0xd48eb716, 0x22a950b4, 0x3cbaaeaa,
    0xc37cddd3, 0x8fea6f6a, 0x1d55d526, 0x7fd6d3b3, 0xdaa072ee, 0x4345ac40,
    0xa077c642, 0x8f2bd45b, 0x28509110, 0x55557613, 0xffc17311, 0xd961ffef,
    0xe532c287, 0xaab95937, 0x46d38365, 0xb065c703, 0xf2d91d0f, 0x92cd4bb0,
    0x4007c712, 0xf35509dd, 0x505b2f69, 0x557ead81, 0x310f4563, 0xbddc5be8,
    0x9760f38c, 0x701e0205, 0x00157244, 0x14912826, 0xdc4ca32b, 0x67b196de,
    0x5db292e8, 0x8c1b406b, 0x01f34075, 0xfa2520f7, 0x73bc37ab, 0x1e18bc30,
    0xfe2c6cb3, 0x20c522d0, 0x5639e3db, 0x942bda35, 0x899af9d1, 0xced44035,
    0x98cc025b, 0x255f5771, 0x70fefa24, 0xe928fa4d, 0x2c030405, 0xb9325590,
    0x20cb63bd, 0xa166305d, 0x80e52c0a, 0xa8fafe2f, 0x1ad13f7d, 0xcfaf3685,
    0x6c83a199, 0x7d26718a, 0xde5dfcd9, 0x79cf7355, 0x8979d7fb, 0xebf8c55e,
    0xebe408e4, 0xcd2affba, 0xe483be6e, 0xe239d6de, 0x5dc1e9e0, 0x0473931f,
    0x851b097c, 0xac5db249, 0x09c0f9f2, 0xd8d2f134, 0xe6f38e41, 0xb1c71bf1,
    0x52b6e4db, 0x07224424, 0x6cf73e85, 0x4f25d89c, 0x782a7d74, 0x10a68dcd,
    0x3a868189, 0xd570d2dc, 0x69630745, 0x9542ed86, 0x331cd6b2, 0xa84b5b28,
    0x07879c9d, 0x38372f64, 0x7185db11, 0x25ba7c83, 0x01061523, 0xe6792f9f,
    0xe5df07d1, 0x4321b47f, 0x7d2469d8, 0x1a3a4f90, 0x48be29a3, 0x669071af,
    0x8ec8dd31, 0x0810bfbf, 0x813a06b4, 0x68538345, 0x65865ddc, 0x43a71b8e,
    0x78619a56, 0x5a34451d, 0x5bdaa3ed, 0x71edc7e9, 0x17ac9a20, 0x78d10bfa,
    0x6c1e7f35, 0xd51839d9, 0x240cbc51, 0x33513cc1, 0xd2b4f795, 0xccaa8186,
    0x0babe682, 0xa33cf164, 0x18c643ea, 0xc1ca105f, 0x9959147a, 0x6d3d94de,
    0x0b654fbe, 0xed902ca0, 0x7d835cb5, 0x99ba1509, 0x6445c922, 0x495e76c2,
    0xf07194bc, 0xa1631d7e, 0x677076a5, 0x89fffe35, 0x1a49bcf3, 0x8e6c948a,
    0x0144c917, 0x8d93aea1, 0x16f87ddf, 0xc8f25d49, 0x1fb11297, 0x27e750cd,
    0x2f422da1, 0xdee89a77, 0x1534c643, 0x457b7b8b, 0xaf172f7a, 0x6b9b09d6,
    0x33573f7f, 0xf14e15c4, 0x526467d5, 0xaf488241, 0x87c3ee0d, 0x33be490c,
    0x95aa6e52, 0x43ec242e, 0xd77de99b, 0xd018334f, 0x5b78d407, 0x498eb66b,
    0xb1279fa8, 0xb38b0ea6, 0x90718376, 0xe325dee2, 0x8e2f2cba, 0xcaa5bdec,
    0x9d652c56, 0xad68f5cb, 0xa77591af, 0x88e37ee8, 0xf8faa221, 0xfcbbbe47,
    0x4f407786, 0xaf393889, 0xf444a1d9, 0x15ae1a2f, 0x40aa7097, 0x6f9486ac,
    0x29d232a3, 0xe47609e9, 0xe8b631ff, 0xba8565f4, 0x11288749, 0x46c9a838,
    0xeb1b7cd8, 0xf516bbb1, 0xfb74fda0, 0x010996e6, 0x4c994653, 0x1d889512,
    0x53dcd9a3, 0xdd074697, 0x1e78e17c, 0x637c98bf, 0x930bb219, 0xcf7f75b0,
    0xcb9355fb, 0x9e623009, 0xe466d82c, 0x28f968d3, 0xfeb385d9, 0x238e026c,
    0xb8ed0560, 0x0c6a027a, 0x3d6fec4b, 0xbb4b2ec2, 0xe715031c, 0xeded011d,
    0xcdc4d3b9, 0xc456fc96, 0xdd0eea20, 0xb3df8ec9, 0x12351993, 0xd9cbb01c,
    0x603147a2, 0xcf37d17d, 0xf7fcd9dc, 0xd8556fa3, 0x104c8131, 0x13152774,
    0xb4715811, 0x6a72c2c9, 0xc5ae37bb, 0xa76ce12a, 0x8150d8f3, 0x2ec29218,
    0xa35f0984, 0x48c0647e, 0x0b5ff98c, 0x71893f7b,
];

/// The per-seed table `T[i] = BASE[i] ^ seed` (FORMAT.md §6.2).
pub fn table_for_seed(seed: u32) -> [u32; 256] {
    let mut table = BUZHASH_BASE;
    for v in table.iter_mut() {
        *v ^= seed;
    }
    table
}

/// Buzhash of a whole window: `h ^= rotl(T[w[i]], (n - 1 - i) mod 32)` (FORMAT.md §6.2).
///
/// Computed in Horner form (`h = rotl(h, 1) ^ T[b]` per byte, which rotates byte `i` by
/// `n - 1 - i` in the end), four bytes per step to shorten the dependency chain.
pub fn buzhash(table: &[u32; 256], window: &[u8]) -> u32 {
    let mut h = 0u32;
    let mut quads = window.chunks_exact(4);
    for q in &mut quads {
        h = h.rotate_left(4)
            ^ table[q[0] as usize].rotate_left(3)
            ^ table[q[1] as usize].rotate_left(2)
            ^ table[q[2] as usize].rotate_left(1)
            ^ table[q[3] as usize];
    }
    for &b in quads.remainder() {
        h = h.rotate_left(1) ^ table[b as usize];
    }
    h
}

/// One rolling step for a window of `window_len` bytes: drop `out`, append `inp` (FORMAT.md §6.2).
pub fn buzhash_update(table: &[u32; 256], h: u32, out: u8, inp: u8, window_len: usize) -> u32 {
    h.rotate_left(1)
        ^ table[out as usize].rotate_left((window_len % 32) as u32)
        ^ table[inp as usize]
}

/// The prepared state for finding buzhash cut points: the seeded tables and the sizes.
#[derive(Clone)]
pub(crate) struct CutFinder {
    /// `T[i] = BASE[i] ^ seed`.
    table: [u32; 256],
    /// `rotl(T[i], W mod 32)`: the contribution of the byte leaving the window.
    table_out: [u32; 256],
    /// `2^min_exp`.
    pub(crate) min_size: usize,
    /// `2^max_exp`.
    pub(crate) max_size: usize,
    /// `2^mask_bits - 1`.
    mask: u32,
    /// The window size W.
    window: usize,
}

impl CutFinder {
    /// Prepares the tables; the sizes must already be validated (`W + min + 1 <= max`).
    pub(crate) fn new(min_exp: u32, max_exp: u32, mask_bits: u32, window: u32, seed: u32) -> Self {
        let table = table_for_seed(seed);
        let window = window as usize;
        let mut table_out = table;
        for v in table_out.iter_mut() {
            *v = v.rotate_left((window % 32) as u32);
        }
        CutFinder {
            table,
            table_out,
            min_size: 1usize << min_exp,
            max_size: 1usize << max_exp,
            mask: ((1u64 << mask_bits) - 1) as u32,
            window,
        }
    }

    /// Length of the chunk that starts at `data[0]` (FORMAT.md §6.3).
    ///
    /// `data` must hold the bytes from the chunk start up to `min(start + max, E)` (E = end of
    /// stream): then `data.len() < max` only at the end of the stream, which is where the
    /// short-tail rule applies. Returns a length in `1..=data.len()` (0 for empty `data`).
    pub(crate) fn find_cut(&self, data: &[u8]) -> usize {
        let len = data.len().min(self.max_size);
        self.scan(&data[..len]).unwrap_or(len)
    }

    /// Like [`CutFinder::find_cut`] on a prefix of the stream that may be shorter than `max`
    /// although more data follows: `Some(length)` when the prefix already decides the cut
    /// (a hash hit whose window lies inside it, or a full `max` bytes), `None` when more data
    /// is needed. The answer is then the same as with the full lookahead.
    pub(crate) fn find_cut_partial(&self, data: &[u8]) -> Option<usize> {
        if data.len() >= self.max_size {
            Some(self.find_cut(data))
        } else {
            self.scan(data)
        }
    }

    /// The first position p in `[min, len - W)` whose window `data[p..p + W]` hashes to a cut,
    /// if any (`data` is at most `max` bytes).
    #[inline]
    fn scan(&self, data: &[u8]) -> Option<usize> {
        let len = data.len();
        let min = self.min_size;
        let w = self.window;
        if len < min + w + 1 {
            // Short tail: never split (validated params make this impossible before the end).
            return None;
        }
        let mut h = buzhash(&self.table, &data[min..min + w]);
        // Positions p in [min, len - W) may cut; every step rolls to p + 1.
        let outs = &data[min..len - w];
        let ins = &data[min + w..len];
        let mask = self.mask;
        let t = &self.table;
        let to = &self.table_out;
        // Unrolled by 4: h_{p+k} depends on h_p only through a rotate, which shortens the
        // dependency chain; each intermediate hash is still checked in order. Indexing with
        // `u8 as usize` into the 256-entry tables needs no bounds check.
        let mut oc = outs.chunks_exact(4);
        let mut ic = ins.chunks_exact(4);
        let mut p = min;
        for (o, i) in (&mut oc).zip(&mut ic) {
            let x0 = to[o[0] as usize] ^ t[i[0] as usize];
            let x1 = to[o[1] as usize] ^ t[i[1] as usize];
            let x2 = to[o[2] as usize] ^ t[i[2] as usize];
            let x3 = to[o[3] as usize] ^ t[i[3] as usize];
            // h_{p+2} and h_{p+4} depend on h through a single rotate-xor each (a two-step
            // chain per four bytes); h_{p+1} and h_{p+3} hang off that chain.
            let h2 = h.rotate_left(2) ^ (x0.rotate_left(1) ^ x1);
            let h4 = h2.rotate_left(2) ^ (x2.rotate_left(1) ^ x3);
            let h1 = h.rotate_left(1) ^ x0;
            let h3 = h2.rotate_left(1) ^ x2;
            // One branch for four positions; it is almost never taken.
            let hit =
                ((h & mask) == 0) | ((h1 & mask) == 0) | ((h2 & mask) == 0) | ((h3 & mask) == 0);
            if hit {
                return Some(
                    p + [h, h1, h2, h3]
                        .iter()
                        .position(|&x| x & mask == 0)
                        .unwrap_or(0),
                );
            }
            h = h4;
            p += 4;
        }
        for (&o, &i) in oc.remainder().iter().zip(ic.remainder()) {
            if (h & mask) == 0 {
                return Some(p);
            }
            h = h.rotate_left(1) ^ to[o as usize] ^ t[i as usize];
            p += 1;
        }
        // p == len - W: not enough lookahead for another cut.
        None
    }
}
