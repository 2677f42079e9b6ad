//! tonic-prost's codec with buffers sized for CheckPermission's messages.
//!
//! tonic starts every call's decode buffer and its answer's encode buffer at 8 KiB. A
//! CheckPermission request or answer is under 200 bytes, and glibc serves a request of
//! 1 KiB or more from its slow path (it consolidates its fast bins first): those two
//! buffers were the largest allocations of a check and about 1 % of the server's CPU
//! under load. Both buffers grow when a message needs more, so a larger message (a client
//! sending a long id) is still read whole.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Bytes each buffer starts with: room for a check request or answer with ids of a few
/// dozen bytes.
const START: usize = 512;

/// How much encoded data a streaming answer buffers before yielding it: tonic's default.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// [`ProstCodec`] with [`START`]-byte buffers; `build.rs` names it for CheckPermission.
#[derive(Debug)]
pub struct SmallCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallCodec<T, U> {
    fn default() -> Self {
        SmallCodec(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(START, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
