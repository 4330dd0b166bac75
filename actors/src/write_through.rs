//! Stream wrappers that change only how a stream is read (a replayed prefix, skipped junk, a
//! connection handle kept alive beside its channel) write straight to the stream they wrap.
//! [`write_through!`] writes that `AsyncWrite` impl once for all of them, vectored writes
//! included, so that no wrapper silently falls back to one write per buffer.

/// Implements `tokio::io::AsyncWrite` for a wrapper by passing every call to the field named
/// first; the rest is the impl's head, e.g.
/// `write_through!(inner, impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S>);`.
/// The field must be `Unpin` (`Pin::new` is used on it).
macro_rules! write_through {
    ($field:ident, $($head:tt)+) => {
        $($head)+ {
            fn poll_write(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.$field).poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use write_through;
