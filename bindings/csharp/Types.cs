// SPDX-License-Identifier: MIT
// Contract descriptions ("polyplug-contracts 1", from DescribeContractFile) and the conversions
// between C# values and the C layouts they describe. Nothing here computes a C layout: every size
// and offset of a struct or an argument block comes from the runtime's description; only the
// primitives' own sizes (and the ABI's StringView, Buffer and array) are known here.
//
// Every pointer and length read from memory a plugin or the runtime wrote goes through
// Memory.Read / Memory.CheckRange, which refuse a NULL pointer with a nonzero length, a length
// above 2^31-1 bytes and a range past 2^62 (InvalidPointerException) instead of reading.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Polyplug
{
    /// <summary>Reads of plugin-provided memory, checked first.</summary>
    public static unsafe class Memory
    {
        /// <summary>The longest run of bytes read from one pointer a plugin hands over (the Python host's limit too).</summary>
        public const long MaxRead = int.MaxValue;
        /// <summary>No user-space address on a 64-bit Linux target reaches this.</summary>
        public const ulong MemoryEnd = 1UL << 62;

        /// <summary>null when [ptr, ptr+length) may be read, else why not.</summary>
        public static string BadRange(IntPtr ptr, ulong length)
        {
            if (length == 0) return null;
            ulong p = (ulong)ptr.ToInt64();
            if (p == 0) return $"NULL pointer with length {length}";
            if (length > MaxRead) return $"length {length} is beyond the limit of {MaxRead} bytes";
            if (p >= MemoryEnd || p + length > MemoryEnd) return $"pointer 0x{p:x} + length {length} is beyond the address space";
            return null;
        }

        public static void CheckRange(IntPtr ptr, ulong length, string what)
        {
            string problem = BadRange(ptr, length);
            if (problem != null) throw new InvalidPointerException($"{what}: {problem}");
        }

        /// <summary>The bytes at ptr (as a plugin or the runtime gave them): empty for length 0,
        /// InvalidPointerException when the range cannot be valid.</summary>
        public static byte[] Read(IntPtr ptr, ulong length, string what = "a plugin-provided pointer")
        {
            if (length == 0) return new byte[0];
            CheckRange(ptr, length, what);
            var bytes = new byte[length];
            Marshal.Copy(ptr, bytes, 0, (int)length);
            return bytes;
        }

        /// <summary>A StringView's text, for messages: a view that cannot be read gives a note saying
        /// so instead of throwing, since it is read while reporting something else.</summary>
        public static string Text(StringView view)
        {
            try { return Encoding.UTF8.GetString(Read(view.Ptr, (ulong)view.Len)); }
            catch (InvalidPointerException e) { return $"<unreadable text: {e.Message}>"; }
        }
    }

    /// <summary>Unmanaged memory a call's arguments (or a host contract's results) point into,
    /// freed together when the call is over.</summary>
    internal sealed class Scratch
    {
        readonly List<IntPtr> blocks = new List<IntPtr>();

        public IntPtr Alloc(long size)
        {
            IntPtr p = Marshal.AllocHGlobal(new IntPtr(Math.Max(size, 1)));
            blocks.Add(p);
            return p;
        }

        public unsafe IntPtr Copy(byte[] data)
        {
            IntPtr p = Alloc(data.Length);
            Marshal.Copy(data, 0, p, data.Length);
            return p;
        }

        public void Clear()
        {
            foreach (IntPtr p in blocks) Marshal.FreeHGlobal(p);
            blocks.Clear();
        }
    }

    /// <summary>A value of a contract enum: its declared name (null for a value the description does
    /// not declare), its number and its enum's name.</summary>
    public sealed class EnumValue : IEquatable<EnumValue>
    {
        public string TypeName { get; }
        public string Name { get; }
        public ulong Value { get; }

        internal EnumValue(string typeName, string name, ulong value) { TypeName = typeName; Name = name; Value = value; }

        public bool Equals(EnumValue other) => other != null && other.TypeName == TypeName && other.Value == Value;
        public override bool Equals(object obj) => Equals(obj as EnumValue);
        public override int GetHashCode() => TypeName.GetHashCode() ^ Value.GetHashCode();
        public override string ToString() => Name != null ? $"{TypeName}.{Name}" : $"{TypeName}({Value})";
    }

    /// <summary>A value of a contract struct: its fields by name, in declaration order. Equality is
    /// field by field (arrays and byte arrays element by element).</summary>
    public sealed class Struct : IEquatable<Struct>
    {
        public string TypeName { get; }
        public IReadOnlyList<string> FieldNames { get; }
        readonly object[] values;

        internal Struct(string typeName, IReadOnlyList<string> fieldNames, object[] values)
        {
            TypeName = typeName; FieldNames = fieldNames; this.values = values;
        }

        public object this[string field]
        {
            get
            {
                for (int i = 0; i < FieldNames.Count; i++) if (FieldNames[i] == field) return values[i];
                throw new UnknownFunctionException($"struct {TypeName} has no field '{field}' (it has {string.Join(", ", FieldNames)})");
            }
        }

        public T Get<T>(string field) => (T)this[field];
        internal object At(int i) => values[i];

        public bool Equals(Struct other)
        {
            if (other == null || other.TypeName != TypeName || other.values.Length != values.Length) return false;
            for (int i = 0; i < values.Length; i++) if (!Values.Same(values[i], other.values[i])) return false;
            return true;
        }

        public override bool Equals(object obj) => Equals(obj as Struct);
        public override int GetHashCode() => TypeName.GetHashCode();
        public override string ToString() =>
            TypeName + "{" + string.Join(", ", FieldNames.Select((f, i) => $"{f}={Values.Show(values[i])}")) + "}";
    }

    /// <summary>Comparison and display of the values contract calls take and return.</summary>
    public static class Values
    {
        /// <summary>Deep equality: arrays and lists element by element, numbers by value across CLR types.</summary>
        public static bool Same(object a, object b)
        {
            if (a == null || b == null) return a == null && b == null;
            if (a is IntPtr pa && b is IntPtr pb) return pa == pb;
            if (IsInteger(a) && IsInteger(b)) return ToDecimal(a) == ToDecimal(b);
            if (a is EnumValue ea && IsInteger(b)) return ToDecimal(b) == ea.Value;
            if (b is EnumValue eb && IsInteger(a)) return ToDecimal(a) == eb.Value;
            if (a is string || b is string) return Equals(a, b);
            if (a is IEnumerable la && b is IEnumerable lb)
            {
                var x = la.Cast<object>().ToList();
                var y = lb.Cast<object>().ToList();
                return x.Count == y.Count && x.Zip(y, Same).All(s => s);
            }
            return a.Equals(b);
        }

        internal static bool IsInteger(object v) =>
            v is sbyte || v is byte || v is short || v is ushort || v is int || v is uint || v is long || v is ulong;

        static decimal ToDecimal(object v) => Convert.ToDecimal(v);

        public static string Show(object v)
        {
            if (v == null) return "null";
            if (v is string s) return "\"" + s + "\"";
            if (v is byte[] b) return "bytes[" + BitConverter.ToString(b) + "]";
            if (v is IEnumerable e) return "[" + string.Join(", ", e.Cast<object>().Select(Show)) + "]";
            return v.ToString();
        }
    }

    /// <summary>One contract type: how a C# value is written into C memory, and read back.</summary>
    public abstract unsafe class ContractType
    {
        public string Name { get; protected set; }
        public int Size { get; protected set; }
        public int Align { get; protected set; }

        internal abstract void Write(byte* p, object value, Scratch scratch, string where);
        internal abstract object Read(byte* p);
        public virtual string Describe() => Name;

        protected ArgumentMismatchException Mismatch(string where, string expected, object value) =>
            new ArgumentMismatchException($"{where}: expected {expected}, got {(value == null ? "null" : value.GetType().Name + " " + Values.Show(value))}");
    }

    internal sealed unsafe class IntType : ContractType
    {
        readonly long lo; readonly ulong hi;

        public IntType(string name, int size, bool signed)
        {
            Name = name; Size = Align = size;
            int bits = size * 8;
            lo = signed ? (bits == 64 ? long.MinValue : -(1L << (bits - 1))) : 0;
            hi = signed ? (1UL << (bits - 1)) - 1 : (bits == 64 ? ulong.MaxValue : (1UL << bits) - 1);
        }

        /// <summary>The value as raw bits, range-checked; nothing is truncated.</summary>
        public ulong Encode(object value, string where)
        {
            // int first, unboxed directly: the common case, without Convert's interface calls.
            if (value is int iv && iv >= lo && (iv < 0 || (ulong)iv <= hi)) return unchecked((ulong)(long)iv);
            if (!Values.IsInteger(value)) throw Mismatch(where, $"an integer ({Name})", value);
            bool inRange;
            ulong bits;
            if (value is ulong u) { inRange = u <= hi; bits = u; }
            else
            {
                long l = Convert.ToInt64(value);
                inRange = l >= lo && (l < 0 || (ulong)l <= hi);
                bits = unchecked((ulong)l);
            }
            if (!inRange)
                throw new ValueOutOfRangeException($"{where}: {value} is outside the range of {Name} [{lo}, {hi}]; nothing is truncated");
            return bits;
        }

        internal override void Write(byte* p, object value, Scratch scratch, string where) => Store(p, Encode(value, where));

        internal void Store(byte* p, ulong bits)
        {
            switch (Size)
            {
                case 1: *p = (byte)bits; break;
                case 2: *(ushort*)p = (ushort)bits; break;
                case 4: *(uint*)p = (uint)bits; break;
                default: *(ulong*)p = bits; break;
            }
        }

        internal ulong Load(byte* p)
        {
            switch (Size)
            {
                case 1: return *p;
                case 2: return *(ushort*)p;
                case 4: return *(uint*)p;
                default: return *(ulong*)p;
            }
        }

        internal override object Read(byte* p)
        {
            // By size and signedness, not by name: a string switch would hash the name on every read.
            bool signed = lo < 0;
            switch (Size)
            {
                case 1: return signed ? (object)*(sbyte*)p : *p;
                case 2: return signed ? (object)*(short*)p : *(ushort*)p;
                case 4: return signed ? (object)*(int*)p : *(uint*)p;
                default: return signed ? (object)*(long*)p : *(ulong*)p;
            }
        }
    }

    internal sealed unsafe class FloatType : ContractType
    {
        public FloatType(string name, int size) { Name = name; Size = Align = size; }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            double d;
            if (value is double dv) d = dv;
            else if (value is float fv) d = fv;
            else if (Values.IsInteger(value)) d = Convert.ToDouble(value);
            else throw Mismatch(where, $"a number ({Name})", value);
            if (Size == 4)
            {
                // Out of range is what rounds to infinity (3.4028235e38 rounds to the largest f32).
                if (!double.IsInfinity(d) && float.IsInfinity((float)d))
                    throw new ValueOutOfRangeException($"{where}: {d:R} is beyond the largest f32 (3.4028234663852886E+38); pass infinity explicitly if that is what you mean");
                *(float*)p = (float)d;
            }
            else *(double*)p = d;
        }

        internal override object Read(byte* p) => Size == 4 ? (object)*(float*)p : *(double*)p;
    }

    internal sealed unsafe class BoolType : ContractType
    {
        public BoolType() { Name = "bool"; Size = Align = 1; }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            if (!(value is bool b)) throw Mismatch(where, "a bool", value);
            *p = b ? (byte)1 : (byte)0;
        }

        internal override object Read(byte* p) => *p != 0;
    }

    internal sealed unsafe class PtrType : ContractType
    {
        public PtrType() { Name = "Ptr"; Size = Align = 8; }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            IntPtr v;
            if (value == null) v = IntPtr.Zero;
            else if (value is IntPtr ip) v = ip;
            else if (value is ulong u) v = new IntPtr(unchecked((long)u));
            else if (Values.IsInteger(value))
            {
                long l = Convert.ToInt64(value);
                if (l < 0) throw new ValueOutOfRangeException($"{where}: {l} is not an address (0 ... 2^64-1)");
                v = new IntPtr(l);
            }
            else throw Mismatch(where, "an address (IntPtr, an integer or null)", value);
            *(IntPtr*)p = v;
        }

        internal override object Read(byte* p) => *(IntPtr*)p;
    }

    /// <summary>string (encoded UTF-8) or byte[] (raw) in; string out (UTF-8, invalid bytes replaced).</summary>
    internal sealed unsafe class StringViewType : ContractType
    {
        public StringViewType() { Name = "StringView"; Size = 16; Align = 8; }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            byte[] data;
            if (value is string s) data = Encoding.UTF8.GetBytes(s);
            else if (value is byte[] b) data = b;
            else throw Mismatch(where, "a string or byte[] (StringView)", value);
            var view = (StringView*)p;
            view->Ptr = data.Length == 0 ? IntPtr.Zero : scratch.Copy(data);
            view->Len = (UIntPtr)(ulong)data.Length;
        }

        internal override object Read(byte* p)
        {
            var view = (StringView*)p;
            return Encoding.UTF8.GetString(Memory.Read(view->Ptr, (ulong)view->Len, "a StringView"));
        }
    }

    /// <summary>byte[] in (copied: the callee cannot write into it), byte[] out.</summary>
    internal sealed unsafe class BufferType : ContractType
    {
        public BufferType() { Name = "Buffer"; Size = 24; Align = 8; }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            if (!(value is byte[] data)) throw Mismatch(where, "a byte[] (Buffer)", value);
            var buf = (AbiBuffer*)p;
            buf->Ptr = data.Length == 0 ? IntPtr.Zero : scratch.Copy(data);
            buf->Len = buf->Cap = (UIntPtr)(ulong)data.Length;
        }

        internal override object Read(byte* p)
        {
            var buf = (AbiBuffer*)p;
            return Memory.Read(buf->Ptr, (ulong)buf->Len, "a Buffer");
        }
    }

    /// <summary>A variant name ("Blue"; for bit flags also "Read|Write"), an EnumValue of this enum,
    /// or an integer (a plain enum's must be a declared value) in; EnumValue out.</summary>
    public sealed unsafe class EnumType : ContractType
    {
        internal readonly IntType Repr;
        public bool BitFlag { get; }
        public IReadOnlyList<KeyValuePair<string, ulong>> Variants { get; }

        internal EnumType(string name, IntType repr, bool bitflag, List<KeyValuePair<string, ulong>> variants)
        {
            Name = name; Repr = repr; BitFlag = bitflag; Variants = variants;
            Size = Align = repr.Size;
        }

        /// <summary>The EnumValue of a variant name (or names joined with | for bit flags).</summary>
        public EnumValue Parse(string text, string where = "enum")
        {
            ulong total = 0;
            foreach (string raw in BitFlag ? text.Split('|') : new[] { text })
            {
                string part = raw.Trim();
                int i = IndexOf(part);
                if (i < 0) throw new ArgumentMismatchException($"{where}: '{text}' is not a variant of {Name} ({string.Join(", ", Variants.Select(v => v.Key))})");
                total |= Variants[i].Value;
            }
            return Make(total);
        }

        int IndexOf(string variant)
        {
            for (int i = 0; i < Variants.Count; i++) if (Variants[i].Key == variant) return i;
            return -1;
        }

        internal EnumValue Make(ulong value)
        {
            foreach (var v in Variants) if (v.Value == value) return new EnumValue(Name, v.Key, value);
            return new EnumValue(Name, null, value);
        }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            ulong number;
            if (value is string s) number = Parse(s, where).Value;
            else if (value is EnumValue e)
            {
                if (e.TypeName != Name) throw new ArgumentMismatchException($"{where}: {e} is not a {Name}");
                number = Repr.Encode(e.Value, where);
            }
            else
            {
                number = Repr.Encode(value, $"{where} ({Name})");
                if (!BitFlag && !Variants.Any(v => v.Value == number))
                    throw new ArgumentMismatchException($"{where}: {number} is not a value of {Name} (" +
                        string.Join(", ", Variants.Select(v => $"{v.Key}={v.Value}")) + ")");
            }
            Repr.Store(p, number);
        }

        internal override object Read(byte* p) => Make(Repr.Load(p));

        public override string Describe() =>
            $"{Name} ({(BitFlag ? "flags" : "enum")} {Repr.Name}: {string.Join(", ", Variants.Select(v => v.Key))})";
    }

    public sealed class StructField
    {
        public string Name { get; }
        public ContractType Type { get; }
        public int Offset { get; }
        internal StructField(string name, ContractType type, int offset) { Name = name; Type = type; Offset = offset; }
    }

    /// <summary>A Struct, an IDictionary with exactly its fields, or any object with public
    /// properties or fields of those names (an anonymous object) in; Struct out.</summary>
    public sealed unsafe class StructType : ContractType
    {
        public IReadOnlyList<StructField> Fields { get; }
        readonly string[] names;

        internal StructType(string name, int size, int align, List<StructField> fields)
        {
            Name = name; Size = size; Align = align; Fields = fields;
            names = fields.Select(f => f.Name).ToArray();
        }

        /// <summary>A value of this struct from its field values, in declaration order.</summary>
        public Struct New(params object[] values)
        {
            if (values.Length != names.Length)
                throw new ArgumentMismatchException($"a {Name} has {names.Length} fields ({string.Join(", ", names)}), got {values.Length} values");
            return new Struct(Name, names, (object[])values.Clone());
        }

        object[] ValuesOf(object value, string where)
        {
            if (value is Struct s)
            {
                if (s.TypeName != Name || !s.FieldNames.SequenceEqual(names))
                    throw new ArgumentMismatchException($"{where}: expected a {Name}, got a {s.TypeName}");
                return names.Select((n, i) => s.At(i)).ToArray();
            }
            if (value is IDictionary dict)
            {
                var keys = dict.Keys.Cast<object>().Select(k => k.ToString()).ToList();
                var missing = names.Where(n => !dict.Contains(n)).ToList();
                var extra = keys.Where(k => !names.Contains(k)).ToList();
                if (missing.Count > 0 || extra.Count > 0)
                    throw new ArgumentMismatchException($"{where}: a {Name} needs exactly the fields {string.Join(", ", names)}" +
                        (missing.Count > 0 ? "; missing " + string.Join(", ", missing) : "") +
                        (extra.Count > 0 ? "; unknown " + string.Join(", ", extra) : ""));
                return names.Select(n => dict[n]).ToArray();
            }
            if (value == null || value is string || Values.IsInteger(value) || value is IEnumerable)
                throw Mismatch(where, $"a {Name} (a Struct, a dictionary or an object with the fields {string.Join(", ", names)})", value);
            var type = value.GetType();
            var output = new object[names.Length];
            for (int i = 0; i < names.Length; i++)
            {
                PropertyInfo prop = type.GetProperty(names[i], BindingFlags.Public | BindingFlags.Instance);
                FieldInfo field = prop == null ? type.GetField(names[i], BindingFlags.Public | BindingFlags.Instance) : null;
                if (prop == null && field == null)
                    throw new ArgumentMismatchException($"{where}: {type.Name} has no property or field '{names[i]}' (a {Name} needs {string.Join(", ", names)})");
                output[i] = prop != null ? prop.GetValue(value) : field.GetValue(value);
            }
            return output;
        }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            object[] values = ValuesOf(value, where);
            for (int i = 0; i < Fields.Count; i++)
                Fields[i].Type.Write(p + Fields[i].Offset, values[i], scratch, $"{where}.{names[i]}");
        }

        internal override object Read(byte* p)
        {
            var values = new object[Fields.Count];
            for (int i = 0; i < values.Length; i++) values[i] = Fields[i].Type.Read(p + Fields[i].Offset);
            return new Struct(Name, names, values);
        }

        public override string Describe() => $"{Name} {{{string.Join(", ", Fields.Select(f => $"{f.Name}: {f.Type.Name}"))}}}";
    }

    /// <summary>Any IEnumerable of element values (byte[] for Array&lt;u8&gt;) in; object[] out.</summary>
    internal sealed unsafe class ArrayType : ContractType
    {
        public readonly ContractType Element;

        public ArrayType(ContractType element) { Element = element; Name = $"Array<{element.Name}>"; Size = 16; Align = 8; }

        internal override void Write(byte* p, object value, Scratch scratch, string where)
        {
            if (value == null || value is string || !(value is IEnumerable items))
                throw Mismatch(where, $"a list or array ({Name})", value);
            var list = items.Cast<object>().ToList();
            var arr = (ContractArray*)p;
            arr->Len = (UIntPtr)(ulong)list.Count;
            if (list.Count == 0) { arr->Items = IntPtr.Zero; return; }
            long bytes = (long)list.Count * Element.Size;
            IntPtr storage = scratch.Alloc(bytes);
            new Span(storage, bytes).Clear();
            for (int i = 0; i < list.Count; i++)
                Element.Write((byte*)storage + (long)i * Element.Size, list[i], scratch, $"{where}[{i}]");
            arr->Items = storage;
        }

        internal override object Read(byte* p)
        {
            var arr = (ContractArray*)p;
            ulong n = (ulong)arr->Len;
            if (n == 0) return new object[0];
            if (n > (ulong)Memory.MaxRead / (ulong)Math.Max(1, Element.Size))
                throw new InvalidPointerException($"an {Name}: {n} items of {Element.Size} bytes are beyond the limit of {Memory.MaxRead} bytes");
            Memory.CheckRange(arr->Items, n * (ulong)Element.Size, $"an {Name}");
            var output = new object[n];
            byte* items = (byte*)arr->Items;
            for (ulong i = 0; i < n; i++) output[i] = Element.Read(items + i * (ulong)Element.Size);
            return output;
        }
    }

    /// <summary>A span of unmanaged bytes (C# 7 has no System.Span on Mono 6.8's profile).</summary>
    internal unsafe struct Span
    {
        readonly byte* p; readonly long n;
        public Span(IntPtr p, long n) { this.p = (byte*)p; this.n = n; }
        public void Clear() { for (long i = 0; i < n; i++) p[i] = 0; }
    }

    public sealed class Param
    {
        public string Name { get; }
        public ContractType Type { get; }
        public int Offset { get; }
        internal Param(string name, ContractType type, int offset) { Name = name; Type = type; Offset = offset; }
    }

    /// <summary>One contract function: its id, parameters, result and argument layout.</summary>
    public sealed class Function
    {
        public string Contract { get; }
        public string Name { get; }
        public uint Id { get; }
        public int ArgsSize { get; }
        public int ArgsAlign { get; }
        /// <summary>null for Void.</summary>
        public ContractType Result { get; }
        public IReadOnlyList<Param> Params { get; }
        public string Signature { get; }
        internal readonly string[] Where;

        internal Function(string contract, string name, uint id, int argsSize, int argsAlign, ContractType result, List<Param> parameters)
        {
            Contract = contract; Name = name; Id = id; ArgsSize = argsSize; ArgsAlign = argsAlign;
            Result = result; Params = parameters;
            Where = parameters.Select(p => $"{contract}.{name}({p.Name})").ToArray();
            Signature = $"{name}({string.Join(", ", parameters.Select(p => $"{p.Name}: {p.Type.Name}"))})" +
                        (result != null ? $" -> {result.Name}" : "");
            foreach (Param p in parameters)
                if (p.Offset < 0 || p.Offset + p.Type.Size > argsSize)
                    throw new ContractFileException($"{contract}.{name}({p.Name}): offset {p.Offset} + size {p.Type.Size} is outside the argument block of {argsSize} bytes");
        }
    }

    /// <summary>A guest or host contract of a contract file.</summary>
    public sealed class Contract
    {
        public string Side { get; }
        public string Name { get; }
        public uint Major { get; }
        public uint Minor { get; }
        public uint Patch { get; }
        public ulong Id { get; }
        public bool Singleton { get; }
        public List<Function> Functions { get; } = new List<Function>();
        public Description Description { get; internal set; }
        internal readonly Dictionary<string, Function> ByName = new Dictionary<string, Function>();

        internal Contract(string side, string name, uint major, uint minor, uint patch, ulong id, bool singleton)
        {
            Side = side; Name = name; Major = major; Minor = minor; Patch = patch; Id = id; Singleton = singleton;
        }

        public Function Function(string name)
        {
            if (ByName.TryGetValue(name, out Function fn)) return fn;
            throw new UnknownFunctionException($"contract {Name} has no function '{name}'; it has {string.Join(", ", Functions.Select(f => f.Name))}");
        }

        public string Doc() =>
            $"{Side} contract {Name}@{Major} (version {Major}.{Minor}.{Patch}, id 0x{Id:x16})\n" +
            string.Join("\n", Functions.Select(f => "  " + f.Signature));
    }

    /// <summary>A parsed description ("polyplug-contracts 1"): enums, structs and contracts.</summary>
    public sealed class Description
    {
        public const string Header = "polyplug-contracts 1";
        public string Source { get; }
        public Dictionary<string, EnumType> Enums { get; } = new Dictionary<string, EnumType>();
        public Dictionary<string, StructType> Structs { get; } = new Dictionary<string, StructType>();
        public List<Contract> Contracts { get; } = new List<Contract>();

        static readonly Dictionary<string, ContractType> Primitives = new Dictionary<string, ContractType>
        {
            ["u8"] = new IntType("u8", 1, false), ["u16"] = new IntType("u16", 2, false),
            ["u32"] = new IntType("u32", 4, false), ["u64"] = new IntType("u64", 8, false),
            ["i8"] = new IntType("i8", 1, true), ["i16"] = new IntType("i16", 2, true),
            ["i32"] = new IntType("i32", 4, true), ["i64"] = new IntType("i64", 8, true),
            ["f32"] = new FloatType("f32", 4), ["f64"] = new FloatType("f64", 8),
            ["bool"] = new BoolType(), ["Ptr"] = new PtrType(),
            ["StringView"] = new StringViewType(), ["Buffer"] = new BufferType(),
        };

        public Description(string text, string source = "<description>")
        {
            Source = source;
            Parse(text);
        }

        /// <summary>The struct type of this name (to build values: <c>Struct("Point").New(1, 2)</c>).</summary>
        public StructType Struct(string name) =>
            Structs.TryGetValue(name, out StructType s) ? s : throw new ContractFileException($"{Source}: no struct named '{name}'");

        public EnumType Enum(string name) =>
            Enums.TryGetValue(name, out EnumType e) ? e : throw new ContractFileException($"{Source}: no enum named '{name}'");

        public ContractType Type(string spelling, string where)
        {
            if (Primitives.TryGetValue(spelling, out ContractType t)) return t;
            if (Enums.TryGetValue(spelling, out EnumType e)) return e;
            if (Structs.TryGetValue(spelling, out StructType s)) return s;
            if (spelling.StartsWith("Array<") && spelling.EndsWith(">"))
            {
                string inner = spelling.Substring(6, spelling.Length - 7);
                if (inner == "Void" || inner.StartsWith("Array<"))
                    throw new ContractFileException($"{where}: {spelling} is not a valid array type");
                return new ArrayType(Type(inner, where));
            }
            throw new ContractFileException($"{where}: unknown type '{spelling}' (declared later or not at all)");
        }

        public Contract Contract(string name, string side = null)
        {
            foreach (Contract c in Contracts)
                if (c.Name == name && (side == null || c.Side == side)) return c;
            string names = string.Join(", ", Contracts.Select(c => $"{c.Name} ({c.Side})"));
            throw new ContractFileException($"{Source}: no {side ?? ""} contract named '{name}'; it declares {(names.Length > 0 ? names : "none")}");
        }

        // The reader of a description's lines (records of space-separated fields).
        sealed class Lines
        {
            readonly string[] lines;
            readonly string source;
            public int Pos = 1;

            public Lines(string[] lines, string source) { this.lines = lines; this.source = source; }

            public bool AtEnd { get { SkipBlank(); return Pos >= lines.Length; } }
            public string Current => lines[Pos];

            void SkipBlank() { while (Pos < lines.Length && lines[Pos] == "") Pos++; }

            public string[] Take(string kind, int count, out int lineNo)
            {
                SkipBlank();
                if (Pos >= lines.Length) throw new ContractFileException($"{source}: the description ends early (expected a {kind} record)");
                string[] f = lines[Pos].Split(' ');
                lineNo = ++Pos;
                if (f[0] != kind || f.Length != count)
                    throw new ContractFileException($"{source}: description line {lineNo}: expected {kind} with {count - 1} fields, got '{lines[Pos - 1]}'");
                return f;
            }

            public ulong Num(string value, int lineNo)
            {
                try
                {
                    return value.StartsWith("0x") ? Convert.ToUInt64(value.Substring(2), 16) : ulong.Parse(value);
                }
                catch (Exception)
                {
                    throw new ContractFileException($"{source}: description line {lineNo}: '{value}' is not a number");
                }
            }

            public int Small(string value, int lineNo)
            {
                ulong n = Num(value, lineNo);
                if (n > int.MaxValue) throw new ContractFileException($"{source}: description line {lineNo}: {n} is too large");
                return (int)n;
            }
        }

        void Parse(string text)
        {
            string[] all = text.Split('\n');
            if (all.Length == 0 || all[0] != Header)
                throw new ContractFileException($"{Source}: not a contract description (first line '{(all.Length > 0 ? all[0] : "")}', expected '{Header}'): the runtime may be newer or older than this library");
            var r = new Lines(all, Source);
            while (!r.AtEnd)
            {
                string kind = r.Current.Split(' ')[0];
                if (kind == "enum")
                {
                    string[] f = r.Take("enum", 5, out int ln);
                    if (!Primitives.TryGetValue(f[2], out ContractType repr) || !(repr is IntType it) || f[2].StartsWith("i"))
                        throw new ContractFileException($"{Source}: line {ln}: bad enum repr '{f[2]}'");
                    var variants = new List<KeyValuePair<string, ulong>>();
                    int count = r.Small(f[4], ln);
                    for (int i = 0; i < count; i++)
                    {
                        string[] v = r.Take("variant", 3, out int vln);
                        variants.Add(new KeyValuePair<string, ulong>(v[1], r.Num(v[2], vln)));
                    }
                    Enums[f[1]] = new EnumType(f[1], it, f[3] == "1", variants);
                }
                else if (kind == "struct")
                {
                    string[] f = r.Take("struct", 5, out int ln);
                    var fields = new List<StructField>();
                    int size = r.Small(f[2], ln), align = r.Small(f[3], ln), count = r.Small(f[4], ln);
                    for (int i = 0; i < count; i++)
                    {
                        string[] fl = r.Take("field", 4, out int fln);
                        var field = new StructField(fl[1], Type(fl[2], $"{f[1]}.{fl[1]}"), r.Small(fl[3], fln));
                        if (field.Offset + field.Type.Size > size)
                            throw new ContractFileException($"{Source}: {f[1]}.{fl[1]} at {field.Offset} (size {field.Type.Size}) is outside the struct's {size} bytes");
                        fields.Add(field);
                    }
                    Structs[f[1]] = new StructType(f[1], size, align, fields);
                }
                else if (kind == "contract")
                {
                    string[] f = r.Take("contract", 9, out int ln);
                    if (f[1] != "guest" && f[1] != "host") throw new ContractFileException($"{Source}: line {ln}: side '{f[1]}'");
                    var c = new Contract(f[1], f[2], (uint)r.Num(f[3], ln), (uint)r.Num(f[4], ln), (uint)r.Num(f[5], ln), r.Num(f[6], ln), f[7] == "1")
                    { Description = this };
                    int count = r.Small(f[8], ln);
                    for (int i = 0; i < count; i++)
                    {
                        string[] fn = r.Take("function", 7, out int fnl);
                        ContractType result = fn[5] == "Void" ? null : Type(fn[5], $"{c.Name}.{fn[1]}");
                        var parameters = new List<Param>();
                        int pcount = r.Small(fn[6], fnl);
                        for (int k = 0; k < pcount; k++)
                        {
                            string[] p = r.Take("param", 4, out int pln);
                            parameters.Add(new Param(p[1], Type(p[2], $"{c.Name}.{fn[1]}.{p[1]}"), r.Small(p[3], pln)));
                        }
                        var function = new Function(c.Name, fn[1], (uint)r.Num(fn[2], fnl), r.Small(fn[3], fnl), r.Small(fn[4], fnl), result, parameters);
                        c.Functions.Add(function);
                        c.ByName[function.Name] = function;
                    }
                    ulong expected = c.Side == "guest" ? Abi.GuestContractId(c.Name, c.Major) : Abi.HostContractId(c.Name, c.Major);
                    if (expected != c.Id)
                        throw new ContractFileException($"{Source}: contract {c.Name}@{c.Major} has id 0x{c.Id:x16}, expected 0x{expected:x16}");
                    Contracts.Add(c);
                }
                else throw new ContractFileException($"{Source}: description line {r.Pos + 1}: unknown record '{r.Current}'");
            }
        }
    }
}
